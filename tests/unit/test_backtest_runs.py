"""Backtesting the stored allocations beside 1/N, inverse volatility and buy-and-hold."""

import datetime as dt

import numpy as np
import polars as pl
import pytest

from model_code.backtest.runs import (
    BASELINES,
    NothingToBacktest,
    backtest_allocations,
    baseline_weights,
    config_hash,
    price_panel,
)
from tests.conftest import clean_bars

BARS = clean_bars(tickers=("AAA", "BBB", "CCC", "DDD"), start=dt.date(2019, 1, 2), n=160).drop("_unparseable")
DAYS = sorted(BARS["date"].unique().to_list())


def _alloc(weights: dict[str, float], days) -> pl.DataFrame:
    rows = [(d, t, w) for d in days for t, w in {**weights, "CASH": 1 - sum(weights.values())}.items()]
    return pl.DataFrame(rows, schema=["as_of", "ticker", "weight"], orient="row")


def test_the_strategy_fills_next_bar_pays_the_costs_and_is_scored_from_its_first_decision():
    run = backtest_allocations(_alloc({"AAA": 0.1, "BBB": 0.1}, DAYS[100:140]), BARS)
    eq = run.equity_frame().filter(pl.col("strategy") == "strategy")
    assert eq["date"][0] == DAYS[100] and eq["equity"][0] == 1_000_000.0  # decided, not yet filled
    assert eq["costs"][1] == pytest.approx(0.2 * 1_000_000 * 10e-4)  # 20 % bought at 5 + 5 bps
    assert eq["gross_exposure"][1] == pytest.approx(0.2, abs=0.01)
    assert set(run.metrics["strategy"]) == {"strategy", *BASELINES}
    assert (run.metrics["n_periods"] == len(DAYS) - 101).all()
    assert run.metrics["n_trials"][0] == 1


def test_all_cash_earns_nothing_and_the_baselines_trade():
    run = backtest_allocations(_alloc({}, DAYS[100:110]), BARS, trial_sharpes=[0.01, -0.02])
    eq = run.equity_frame()
    flat = eq.filter(pl.col("strategy") == "strategy")
    assert (flat["equity"] == 1_000_000.0).all() and (flat["costs"] == 0).all()
    hold = eq.filter(pl.col("strategy") == "buy_and_hold")
    assert (hold["turnover"][2:] == 0).all() and hold["turnover"][1] > 0.99
    assert run.metrics["n_trials"][0] == 2  # the flat strategy's Sharpe is undefined: not a trial


def test_baselines_weigh_the_tickers_with_a_bar():
    panel = price_panel(BARS, DAYS[0], DAYS[-1])
    ew = baseline_weights("equal_weight", panel)
    assert np.allclose(np.nansum(ew, axis=1), 1.0)
    iv = baseline_weights("inverse_vol", panel)
    assert np.allclose(iv[30:].sum(axis=1), 1.0) and (iv[:20] == 0).all()  # no vol estimate yet


def test_nothing_to_backtest_is_refused_and_configs_hash_stably():
    with pytest.raises(NothingToBacktest, match="no stored allocation"):
        backtest_allocations(_alloc({}, [])[:0], BARS)
    with pytest.raises(NothingToBacktest, match="no bar after the first allocation"):
        backtest_allocations(_alloc({}, DAYS[-1:]), BARS)
    with pytest.raises(NothingToBacktest, match="2 session"):
        backtest_allocations(_alloc({}, DAYS[-3:]), BARS)
    assert config_hash({"a": 1, "b": 2}) == config_hash({"b": 2, "a": 1}) != config_hash({"a": 2, "b": 2})
