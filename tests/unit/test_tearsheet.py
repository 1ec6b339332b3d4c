"""Tearsheets on a synthetic backtest run and a synthetic paper account, stored in a real DuckDB
and read back by the loaders: the files exist under $PM_HOME/reports, open offline, hold the
pictures as valid PNGs and the metrics (PSR, DSR) of the strategy and every baseline."""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import re

import numpy as np
import polars as pl
import pytest
from matplotlib.image import imread

from model_code.backtest.metrics import metrics_table
from model_code.backtest.runs import BASELINES, CAPACITY_SCHEMA, REGIME_SCHEMA
from model_code.reports.periods import drawdown_periods, monthly_returns
from model_code.reports.tearsheet import (
    backtest_figure,
    load_backtest_rows,
    load_paper_rows,
    paper_figure,
    write_backtest_tearsheet,
    write_paper_tearsheet,
)

RUN = "run-0001"
STAMP = dt.datetime(2020, 1, 2, tzinfo=dt.UTC)
PNG = re.compile(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"')


def _sessions(n: int) -> list[dt.date]:
    days, d = [], dt.date(2019, 1, 2)
    while len(days) < n:
        if d.weekday() < 5:
            days.append(d)
        d += dt.timedelta(days=1)
    return days


def _store_run(wh, n: int = 300) -> pl.DataFrame:
    """Four random-walk equity curves, their metrics by model_code.backtest.metrics, one regime
    kind and the capacity rows, stored as backtest/run stores them. Returns the metrics."""
    rng = np.random.default_rng(7)
    dates = _sessions(n)
    returns, frames = {}, []
    for i, name in enumerate(["strategy", *BASELINES]):
        r = rng.normal(0.0004 * (i + 1), 0.01, n - 1)
        equity = 1_000_000.0 * np.concatenate([[1.0], np.cumprod(1 + r)])
        returns[name] = r
        frames.append(
            pl.DataFrame(
                {
                    "run_id": RUN,
                    "strategy": name,
                    "date": dates,
                    "equity": equity,
                    "drawdown": 1.0 - equity / np.maximum.accumulate(equity),
                    "gross_exposure": 1.0,
                    "turnover": 0.02,
                    "costs": 20.0,
                }
            )
        )
    metrics = metrics_table(
        returns, returns["equal_weight"], [0.01, -0.02, 0.03, returns["strategy"].mean() / 0.01]
    )
    config = {
        "commission_bps": 5.0,
        "slippage_bps": 5.0,
        "impact_k": 0.0,
        "initial_cash": 1_000_000.0,
        "note": "see https://example.invalid/x",
    }  # text from the data may quote a URL
    wh.upsert(
        "backtest.runs",
        pl.DataFrame(
            {
                "run_id": [RUN],
                "created_at": [STAMP],
                "config_hash": ["abc"],
                "config": [json.dumps(config)],
                "data_start": [dates[0]],
                "data_end": [dates[-1]],
                "git_sha": ["deadbeef"],
                "tickers": [12],
            }
        ),
        ["run_id"],
    )
    wh.upsert("backtest.equity", pl.concat(frames), ["run_id", "strategy", "date"])
    wh.upsert("backtest.metrics", metrics.with_columns(run_id=pl.lit(RUN)), ["run_id", "strategy"])
    regimes = pl.DataFrame(
        [
            (s, "trend", g, 140, 0.02, 0.08, 0.3, g == "down", 2, 0.5, 1.2, 0.27)
            for s in returns
            for g in ("up", "down")
        ],
        schema=REGIME_SCHEMA,
        orient="row",
    )
    wh.upsert(
        "backtest.regimes",
        regimes.with_columns(run_id=pl.lit(RUN)),
        ["run_id", "strategy", "regime_kind", "regime"],
    )
    capacity = pl.DataFrame(
        [
            (
                s,
                k,
                5e-4,
                2.5e8 / k,
                1e8 / k,
                None if s == "strategy" else float("inf"),
                1e8 / k,
                4e-4,
                1e-4,
                0.3,
                50,
                0,
            )
            for s in returns
            for k in (1.0, 0.5)
        ],
        schema=CAPACITY_SCHEMA,
        orient="row",
    )
    wh.upsert("backtest.capacity", capacity.with_columns(run_id=pl.lit(RUN)), ["run_id", "strategy", "k"])
    return metrics


def _images(page: str) -> list[bytes]:
    return [base64.b64decode(m, validate=True) for m in PNG.findall(page)]


def _assert_valid_png(png: bytes) -> None:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pixels = imread(io.BytesIO(png), format="png")  # decodes every chunk: a truncated file fails
    assert pixels.ndim == 3 and pixels.shape[0] > 50 and pixels.shape[1] > 50


def test_a_backtest_tearsheet_is_offline_and_shows_equity_drawdown_and_the_metrics(
    warehouse, isolated_pm_home
):
    metrics = _store_run(warehouse)
    rows = load_backtest_rows(warehouse, RUN)
    path = write_backtest_tearsheet(rows)
    assert path == isolated_pm_home / "reports" / "backtest" / f"{RUN}.html" and path.is_file()
    page = path.read_text(encoding="utf-8")
    assert "http://" not in page and "https://" not in page
    assert "<script" not in page and "<link" not in page
    for words in (
        "Equity and drawdown vs the baselines",
        "Drawdown periods",
        "Monthly returns",
        "Metrics with PSR and DSR",
        "PSR (SR* = 0)",
        "DSR (deflated Sharpe)",
        "Capacity",
        "Regimes",
        "Costs",
    ):
        assert words in page, words
    # the metrics table's header is the strategy and each baseline, its cells the stored values
    head = re.search(r"<th>metric</th>(.*?)</tr>", page).group(1)
    assert re.findall(r"<th>(.*?)</th>", head) == ["strategy", *BASELINES]
    for row in metrics.iter_rows(named=True):
        assert f"{row['psr']:.3f}" in page and f"{row['dsr']:.3f}" in page
    assert "unknown (no ADV)" in page and "∞ (never binds)" in page  # NULL and inf capacity
    assert "commission_bps" in page and "<td>6,000</td>" in page  # 300 sessions x 20 paid
    assert "&#58;//example.invalid" in page  # the quoted URL is text, never a link
    images = _images(page)
    assert len(images) == 2  # equity/drawdown and the heatmap
    for png in images:
        _assert_valid_png(png)
    small = backtest_figure(rows, small=True)
    _assert_valid_png(small)
    assert len(small) < 100_000  # tens of KB: fit for asset metadata


def test_an_unknown_run_is_a_key_error(warehouse):
    with pytest.raises(KeyError, match="no backtest run"):
        load_backtest_rows(warehouse, "missing")


def test_drawdown_periods_start_at_the_peak_and_end_back_at_it():
    dates = _sessions(7)
    periods = drawdown_periods(dates, [100, 110, 99, 105, 111, 100, 90])
    assert periods.rows() == [
        (dates[4], dates[6], None, pytest.approx(1 - 90 / 111), 2, 2),  # still under water
        (dates[1], dates[2], dates[4], pytest.approx(0.1), 3, 1),
    ]
    assert drawdown_periods(dates, [1, 2, 3, 4, 5, 6, 7]).is_empty()


def test_monthly_returns_chain_month_ends():
    dates = [dt.date(2019, 1, 30), dt.date(2019, 1, 31), dt.date(2019, 2, 28), dt.date(2019, 3, 1)]
    out = monthly_returns(dates, [100.0, 110.0, 99.0, 108.9])
    assert out["year"].to_list() == [2019] * 3 and out["month"].to_list() == [1, 2, 3]
    assert out["ret"].to_list() == pytest.approx([0.10, -0.10, 0.10])


def _store_paper(wh, n: int = 60) -> None:
    rng = np.random.default_rng(3)
    dates = _sessions(n)
    bench = 10_000.0 * np.cumprod(1 + rng.normal(0.0005, 0.01, n))
    equity = bench * (1 + rng.normal(0.0, 2e-4, n))
    wh.upsert(
        "paper.equity",
        pl.DataFrame(
            {
                "account": "paper",
                "date": dates,
                "equity": equity,
                "cash": 100.0,
                "market_value": equity - 100.0,
                "gross_exposure": 0.99,
                "peak": np.maximum.accumulate(equity),
                "drawdown": 1 - equity / np.maximum.accumulate(equity),
                "hit_rate": None,
                "halted": None,
                "halt_note": None,
                "n_orders": 2,
                "n_fills": 2,
                "backtest_equity": bench,
                "drift": equity / bench - 1,
                "computed_at": STAMP,
            }
        ),
        ["account", "date"],
    )
    fills = pl.DataFrame(
        {
            "order_id": [f"o{i}" for i in range(4)],
            "account": "paper",
            "date": dates[1:5],
            "ticker": "A",
            "kind": "rebalance",
            "ordered": 10.0,
            "split_ratio": 1.0,
            "quantity": 10.0,
            "price": 100.0,
            "value": 1000.0,
            "commission": 0.5,
            "slippage": 0.5,
            "impact": 0.0,
            "created_at": STAMP,
        }
    )
    wh.upsert("paper.fills", fills, ["order_id"])
    trades = fills.select("account", "date", "ticker", "quantity", "price", order_id="order_id").with_columns(
        kind=pl.lit("fill"),
        amount=pl.lit(-1001.0),
        ratio=None,
        quantity_before=0.0,
        quantity_after=10.0,
        realized_pnl=None,
    )
    wh.upsert("paper.trades", trades, ["account", "date", "ticker", "kind"])


def test_a_paper_tearsheet_is_offline_and_shows_equity_drift_and_the_metrics(warehouse, isolated_pm_home):
    _store_paper(warehouse)
    _store_run(warehouse)
    warehouse.upsert(
        "backtest.trials",
        pl.DataFrame(
            {
                "config_hash": ["a", "b", "c"],
                "config": "{}",
                "first_run_id": RUN,
                "sharpe_per_period": [0.01, 0.05, -0.02],
                "n_periods": 200,
                "created_at": STAMP,
            }
        ),
        ["config_hash"],
    )
    rows = load_paper_rows(warehouse, "paper", {"commission_bps": 5.0, "slippage_bps": 5.0})
    assert sorted(rows.trial_sharpes) == [-0.02, 0.01, 0.05]
    path = write_paper_tearsheet(rows)
    assert path == isolated_pm_home / "reports" / "paper" / "paper.html" and path.is_file()
    page = path.read_text(encoding="utf-8")
    assert "http://" not in page and "https://" not in page
    for words in (
        "Equity and drawdown vs the backtest",
        "drift from the backtest",
        "Drawdown periods",
        "PSR (SR* = 0)",
        "DSR (deflated Sharpe)",
        "Costs",
        "Trades",
        "commission_bps",
    ):
        assert words in page, words
    head = re.search(r"<th>metric</th>(.*?)</tr>", page).group(1)
    assert re.findall(r"<th>(.*?)</th>", head) == ["paper", "backtest"]
    assert "<td>2.00</td>" in page  # commission paid: 4 fills x 0.5
    assert re.search(r"<td>trials behind DSR</td><td>3</td>", page)
    images = _images(page)
    assert len(images) == 3  # drawdown, drift, heatmap
    for png in [*images, paper_figure(rows, small=True)]:
        _assert_valid_png(png)
