"""Backtesting the stored allocations beside 1/N, inverse volatility and buy-and-hold."""

import datetime as dt
import math

import numpy as np
import polars as pl
import pytest

from model_code.backtest.runs import (
    BASELINES,
    NothingToBacktest,
    backtest_allocations,
    baseline_weights,
    capacity_frame,
    config_hash,
    headline,
    markdown,
    price_panel,
    regime_frame,
    regime_labels,
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


# Per-run regime and capacity tables (regime_frame, capacity_frame, headline).

ALLOC = _alloc({"AAA": 0.3, "BBB": 0.3}, DAYS[100:140])


def test_regime_labels_use_only_what_was_known_at_the_previous_close():
    run = backtest_allocations(ALLOC, BARS)
    labels, skipped = regime_labels(run, BARS)
    assert skipped == {} and set(labels) == {"volatility", "trend", "hmm"}
    scored = run.panel.dates[run.first + 1 :]
    cut = DAYS[125]
    shocked = BARS.with_columns(
        [
            pl.when(pl.col("date") >= cut).then(pl.col(c) * 3.0).otherwise(pl.col(c)).alias(c)
            for c in ("close", "adj_close")
        ]
    )
    again, _ = regime_labels(backtest_allocations(ALLOC, shocked), shocked)
    upto = sum(d <= cut for d in scored)  # the return of `cut` itself is labelled at the close before
    for kind in labels:
        assert list(labels[kind][:upto]) == list(again[kind][:upto]), kind
    assert (labels["volatility"] != None).sum() > 0 and (labels["hmm"] != None).sum() == len(scored)  # noqa: E711
    assert (labels["trend"] == None).all()  # noqa: E711  160 sessions: no 200-day average yet


def test_the_hmm_kind_is_left_out_and_said_so_without_history_before_the_first_decision():
    run = backtest_allocations(_alloc({"AAA": 0.5}, DAYS[5:60]), BARS)
    labels, skipped = regime_labels(run, BARS)
    assert "hmm" not in labels and "HMM" in skipped["hmm"]


def test_regime_frame_scores_each_strategy_per_regime_and_marks_the_worst():
    run = backtest_allocations(ALLOC, BARS)
    labels, _ = regime_labels(run, BARS)
    frame = regime_frame(run, labels)
    assert set(frame["strategy"]) == {"strategy", *BASELINES}
    assert set(frame["regime_kind"]) == {"volatility", "hmm"}
    returns = run.results["strategy"].returns[run.first :]
    for (kind,), part in frame.filter(pl.col("strategy") == "strategy").group_by("regime_kind"):
        assert part["n"].sum() == sum(x is not None for x in labels[kind])
        assert part.filter(pl.col("is_worst"))["regime"].to_list() == [part.sort("sharpe")["regime"][0]]
        row = part.row(0, named=True)
        x = returns[labels[kind] == row["regime"]]
        assert row["sharpe"] == pytest.approx(x.mean() / x.std(ddof=1))
        assert row["share_positive"] == pytest.approx((part["sharpe"] > 0).mean())
        assert 0 <= row["heterogeneity_p"] <= 1 and part["regimes_in_kind"][0] == part.height


def test_capacity_frame_prices_the_runs_own_trades():
    run = backtest_allocations(ALLOC, BARS)
    frame = capacity_frame(run)
    assert frame.height == 2 * (1 + len(BASELINES)) and set(frame["k"]) == {1.0, 0.5}
    row = frame.filter((pl.col("strategy") == "strategy") & (pl.col("k") == 1.0)).row(0, named=True)
    half = frame.filter((pl.col("strategy") == "strategy") & (pl.col("k") == 0.5)).row(0, named=True)
    r = run.results["strategy"]
    # with impact off the run's net return is exactly the gross less the half-spread on turnover
    net = r.returns[run.first :]
    assert row["gross_mean"] - row["fixed_cost"] == pytest.approx(net.mean(), rel=1e-9)
    assert row["fixed_cost"] == pytest.approx(1e-3 * r.turnover[run.first + 1 :].mean(), rel=1e-9)
    assert row["unpriced_trades"] == 0 and row["trades"] > 0
    # the closed form: half the impact coefficient quadruples the AUM levels; the cap does not move
    assert half["aum_edge_vanishes"] == pytest.approx(4 * row["aum_edge_vanishes"], rel=1e-9)
    assert row["aum_sharpe_halves"] == pytest.approx(row["aum_edge_vanishes"] / 4, rel=1e-9)
    assert half["aum_participation_binds"] == row["aum_participation_binds"]
    assert row["capacity"] == min(row["aum_sharpe_halves"], row["aum_participation_binds"])
    # the cap binds at the first AUM where a trade exceeds 10 % of the ADV known at its decision
    from model_code.execution import trailing_adv

    adv = trailing_adv(run.panel.close, run.panel.volume)[run.first : -1]
    dw = np.abs(r.value[run.first + 1 :]) / r.equity[run.first : -1, None]
    binds = row["aum_participation_binds"]
    assert not (dw * binds * (1 - 1e-9) > 0.1 * adv).any() and (dw * binds * (1 + 1e-6) > 0.1 * adv).any()


def test_all_cash_has_no_edge_and_never_binds_and_the_headline_keeps_finite_numbers():
    run = backtest_allocations(_alloc({}, DAYS[100:110]), BARS)
    labels, _ = regime_labels(run, BARS)
    frame = capacity_frame(run)
    flat = frame.filter(pl.col("strategy") == "strategy")
    assert (flat["trades"] == 0).all() and (flat["aum_participation_binds"] == math.inf).all()
    assert (flat["capacity"] == 0).all()  # no gross edge over its costs: nothing to scale
    regimes = regime_frame(run, labels)
    assert "strategy" not in set(regimes["strategy"])  # a flat record has no Sharpe in any regime
    top = headline(regimes, frame)
    assert top == {
        "capacity_usd": 0.0,
        "aum_edge_vanishes_usd": 0.0,
        "capacity_unpriced_trades": 0.0,
        "capacity_usd_k05": 0.0,
    }
    assert headline(regimes, frame, "equal_weight")["worst_regime_sharpe"] == pytest.approx(
        regimes.filter(pl.col("strategy") == "equal_weight")["sharpe_annualized"].min()
    )
    text = markdown(flat.select("strategy", "k", "aum_participation_binds"))
    assert text.splitlines()[2] == "| strategy | 1 | inf |"


def test_trades_without_volume_data_are_not_priced_and_leave_the_capacity_unknown():
    no_volume = BARS.with_columns(
        volume=pl.when(pl.col("ticker") == "AAA").then(None).otherwise(pl.col("volume"))
    )
    run = backtest_allocations(_alloc({"AAA": 0.5}, DAYS[100:140]), no_volume)
    assert run.without_volume == ("AAA",)
    frame = capacity_frame(run)
    only_aaa = frame.filter(pl.col("strategy") == "strategy")
    assert (only_aaa["unpriced_trades"] == only_aaa["trades"]).all() and only_aaa["trades"][0] > 0
    assert only_aaa["capacity"].is_null().all() and only_aaa["aum_participation_binds"].is_null().all()
    ew = frame.filter(pl.col("strategy") == "equal_weight").row(0, named=True)
    assert 0 < ew["unpriced_trades"] < ew["trades"] and ew["capacity"] is not None  # priced: BBB..DDD
    assert "capacity_usd" not in headline(regime_frame(run, {}), frame)
    assert "| strategy | 1 | n/a |" in markdown(only_aaa.select("strategy", "k", "capacity"))
