"""The backtest report's pieces: Qlib's TopkDropout rule by hand, the rebalance schedule, and a
smoke run of the whole report on a small synthetic panel."""

import datetime as dt

import numpy as np
import polars as pl
import pytest

from model_code.backtest.report import (
    BASELINES,
    HitScreen,
    ReportSettings,
    allocation_trials,
    leakage_flags,
    rebalance_sessions,
    render,
    run_report,
    strategy_name,
    topk_name,
)
from model_code.backtest.topk import topk_dropout_holdings, topk_dropout_weights
from model_code.features import build_targets
from model_code.forecasting.predictions import target_dates
from model_code.market_data.calendar import trading_calendar
from model_code.market_data.schema import conform_ohlcv

NAN = np.nan


def test_topk_dropout_swaps_at_most_n_drop_names_for_better_ranked_ones():
    scores = np.array(
        [
            [5, 4, 3, 2, 1],  # empty book: buy the top 2 -> {0, 1}
            [1, 5, 4, 3, 2],  # 0 is the worst of {1, 0} + best outsider 2: swap 0 -> 2
            [9, 8, 1, 0, 0],  # 2 is now the worst: swap 2 -> 0
            [0, 0, 0, 9, 8],  # 3 and 4 both beat the book, but only one swap a day: 1 (tie, later index) -> 3
            [1, 1, 1, 5, 9],  # 0 has no bar: it stays held; 3 is the worst tradable: 3 -> 4
        ],
        dtype=float,
    )
    tradable = np.ones(scores.shape, dtype=bool)
    tradable[4, 0] = False
    held = topk_dropout_holdings(scores, topk=2, n_drop=1, tradable=tradable)
    assert [sorted(np.flatnonzero(h).tolist()) for h in held] == [[0, 1], [1, 2], [0, 1], [0, 3], [0, 4]]
    w = topk_dropout_weights(scores, topk=2, n_drop=1, tradable=tradable)
    assert np.isnan(w[4, 0]) and w[4, 4] == 0.5 and w[4, 1] == w[4, 2] == w[4, 3] == 0.0
    assert np.allclose(w[:4].sum(axis=1), 1.0)


def test_topk_dropout_without_drops_never_trades_and_is_point_in_time():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(30, 12))
    frozen = topk_dropout_holdings(scores, topk=4, n_drop=0)
    assert (frozen == frozen[0]).all() and frozen[0].sum() == 4
    held = topk_dropout_holdings(scores, topk=4, n_drop=2)
    changed = scores.copy()
    changed[15:] = rng.normal(size=(15, 12))  # a different future
    assert (topk_dropout_holdings(changed, topk=4, n_drop=2)[:15] == held[:15]).all()
    swaps = (held[1:] & ~held[:-1]).sum(axis=1)
    assert (swaps <= 2).all() and (held.sum(axis=1) == 4).all()
    with pytest.raises(ValueError, match="n_drop"):
        topk_dropout_holdings(scores, topk=2, n_drop=3)


def test_rebalances_start_each_month_and_step_by_the_horizon():
    days = trading_calendar().session_dates(dt.date(2018, 1, 1), dt.date(2018, 2, 28))
    got = rebalance_sessions(days, 5)
    jan = [d for d in days if d.month == 1]
    feb = [d for d in days if d.month == 2]
    assert got == jan[::5] + feb[::5]
    assert got[0] == dt.date(2018, 1, 2) and dt.date(2018, 2, 1) in got


def test_monthly_spacing_keeps_only_each_months_first_session():
    days = trading_calendar().session_dates(dt.date(2018, 1, 1), dt.date(2018, 6, 30))
    assert rebalance_sessions(days, 25) == [
        d for i, d in enumerate(days) if i == 0 or d.month != days[i - 1].month
    ]


def test_a_high_hit_rate_is_a_leakage_suspect_only_beyond_the_markets_on_the_same_days():
    # 100 active days, universe up on half of them: one binomial s.e. is 5 points
    assert not HitScreen("a", 0.599, 0.5, 100).suspect  # within two s.e. of the market
    assert HitScreen("b", 0.601, 0.5, 100).suspect
    assert not HitScreen("c", 0.60, 0.58, 2_000).suspect and HitScreen("d", 0.60, 0.58, 3_000).suspect


def _bars(n_tickers: int, start: dt.date, end: dt.date) -> pl.DataFrame:
    rng = np.random.default_rng(7)
    days = trading_calendar().session_dates(start, end)
    rows = []
    for k in range(n_tickers):
        price = 40.0 + 5 * k
        vol = 0.01 + 0.002 * k
        for day in days:
            open_ = price * (1 + rng.normal(0, vol / 3))
            close = open_ * (1 + rng.normal(0.0003, vol))
            rows.append(
                {
                    "ticker": f"T{k:02d}",
                    "date": day,
                    "open": open_,
                    "high": max(open_, close) * 1.004,
                    "low": min(open_, close) * 0.996,
                    "close": close,
                    "adj_close": close,
                    "volume": float(rng.integers(200_000, 2_000_000)),
                }
            )
            price = close
    return conform_ohlcv(pl.DataFrame(rows), source="test", origin="test")


def _inputs(bars: pl.DataFrame, targets: pl.DataFrame, since: dt.date) -> pl.DataFrame:
    """Forecasts that are the realized 5-session return plus heavy noise (some skill), ML every
    session and TS at month starts, as ``@signal_inputs`` rows."""
    rng = np.random.default_rng(3)
    rows = targets.filter(pl.col("date") >= since).select("ticker", "date", "fwd_ret_5").drop_nulls()
    days = sorted(rows["date"].unique().to_list())
    ahead = {d: target_dates(d, [5])[5] for d in days}
    noisy = rows["fwd_ret_5"].to_numpy() + rng.normal(0, 0.05, rows.height)
    base = rows.with_columns(
        origin=pl.col("date"),
        target_date=pl.col("date").replace_strict(ahead, return_dtype=pl.Date),
        yhat=pl.Series(noisy),
    ).with_columns(lower_80=pl.col("yhat") - 0.05, upper_80=pl.col("yhat") + 0.05)
    firsts = set(rebalance_sessions(days, 10_000))
    ml = base.with_columns(source=pl.lit("ml"), model=pl.lit("lgbm"))
    ts = base.filter(pl.col("date").is_in(list(firsts))).with_columns(
        source=pl.lit("ts"), model=pl.lit("ensemble")
    )
    cols = ["source", "origin", "ticker", "model", "target_date", "yhat", "lower_80", "upper_80"]
    return pl.concat([ml.select(cols), ts.select(cols)])


def test_the_report_runs_every_piece_on_a_small_panel():
    bars = _bars(10, dt.date(2016, 1, 4), dt.date(2017, 6, 30))
    targets = build_targets(bars)
    inputs = _inputs(bars, targets, dt.date(2016, 3, 1))
    settings = ReportSettings(
        start=dt.date(2017, 4, 3),
        end=dt.date(2017, 6, 30),
        methods=("kelly", "barbell", "hrp", "equal_weight"),
        sources=("ml", "routed"),
        topk=((3, 1), (5, 1)),
        pbo_blocks=4,
    )
    report = run_report(bars, inputs, targets, settings, log=lambda _: None)
    names = [strategy_name(m, s) for s in settings.sources for m in settings.methods]
    names += [topk_name(3, 1), topk_name(5, 1)]
    assert report.strategies == names
    assert set(report.metrics["strategy"]) == {*names, *BASELINES}
    sessions = len(trading_calendar().session_dates(settings.start, settings.end))
    assert (report.metrics["n_periods"] == sessions - 1).all()  # scored from the first decision's fill
    assert len(report.trial_sharpes) <= len(names) * len(settings.costs_bps)
    assert report.metrics["n_trials"][0] == len(report.trial_sharpes)
    assert 0.0 <= report.pbo <= 1.0 and report.pbo_configs == len(names)
    # higher costs never help a strategy that trades
    for name in names:
        growth = [np.prod(1 + report.returns(name, b)) for b in settings.costs_bps]
        assert all(a >= b - 1e-12 for a, b in zip(growth, growth[1:], strict=False)), name
    # the weights respect the position cap on every rebalance
    for made in report.allocations.values():
        risky = made.filter((pl.col("ticker") != "CASH") & (pl.col("sleeve") == "risky"))
        assert (risky["weight"] <= 0.10 + 1e-12).all()
    assert set(report.capacity["strategy"]) == {*names, *BASELINES}
    assert set(report.regimes["regime_kind"]) == {"volatility", "trend", "hmm"}
    assert set(report.regimes["strategy"]) == {*names, *BASELINES}
    assert isinstance(leakage_flags(report), list)
    meta = {
        "command": "python -m model_code.backtest.report ...",
        "generated": "today",
        "machine": "test",
        "parquet": "synthetic",
        "walk_forward": "synthetic",
        "data_note": "10 tickers",
        "faults": "none.",
        "timings": "",
        "ml_schedule": "each month's first session",
        "seconds": 0.0,
    }
    text = render(report, meta)
    for name in [*names, *BASELINES]:
        assert f"| {name} |" in text
    for section in ("## Costs", "## Capacity", "## Regimes", "## Qlib's TopkDropout", "## Reading it"):
        assert section in text
    assert "-2.6%/yr" in text and "9.1%/yr" in text
    assert "## Rebalance spacing" not in text
    assert len(allocation_trials(report)) <= len(report.allocations) * len(settings.costs_bps)
    beside = render(report, {**meta, "compare": report})
    assert "## Rebalance spacing" in beside and f"| {strategy_name('kelly', 'ml')} |" in beside
