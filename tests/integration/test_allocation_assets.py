"""``portfolio/allocations`` and ``backtest/run`` after ``signals/daily`` on a temporary DuckDB."""

from __future__ import annotations

import base64
import datetime as dt
import re
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from pm_assets.backtest import backtest_assets
from pm_assets.portfolio import portfolio_assets
from pm_assets.signals import signal_assets
from pm_resources import OllamaResource, WarehouseResource
from tests.integration.test_signal_assets import _q, _seed

TAGS = {ASSET_PARTITION_RANGE_START_TAG: "2019-05-01", ASSET_PARTITION_RANGE_END_TAG: "2019-06-14"}


def test_allocations_respect_every_limit_and_a_rerun_changes_nothing(tmp_path):
    db = tmp_path / "wh.duckdb"
    _seed(db)
    resources = {"warehouse": WarehouseResource(database=str(db)), "ollama": OllamaResource()}
    assert dg.materialize(signal_assets[:1], resources=resources, tags=TAGS).success
    result = dg.materialize(portfolio_assets, resources=resources, tags=TAGS)
    assert result.success
    alloc = _q(db, "SELECT * FROM portfolio.allocations ORDER BY as_of, ticker")
    sums = alloc.group_by("as_of").agg(pl.col("weight").sum())
    assert sums.height == 32 and (sums["weight"] - 1.0).abs().max() < 1e-9
    risky = alloc.filter(pl.col("ticker") != "CASH")
    assert (risky["weight"] <= 0.10 + 1e-12).all() and (risky["weight"] >= 0).all()
    signals = _q(db, "SELECT as_of, ticker, action, confidence FROM signals.daily")
    held = risky.filter(pl.col("weight") > 0).join(signals, on=["as_of", "ticker"])
    assert held.height > 0 and (held["action"] == "BUY").all() and (held["confidence"] >= 0.55).all()
    assert set(alloc["binding_limit"]) <= {"none", "position_cap", "gross_cap", "min_confidence"}
    meta = result.asset_materializations_for_node("portfolio__allocations")[0].metadata
    assert meta["rows_written"].value == float(alloc.height)

    again = dg.materialize(portfolio_assets, resources=resources, partition_key="2019-06-03")
    assert again.success
    rerun = _q(db, "SELECT * FROM portfolio.allocations WHERE as_of = DATE '2019-06-03' ORDER BY ticker")
    first = alloc.filter(pl.col("as_of") == dt.date(2019, 6, 3))
    assert rerun.drop("computed_at", "reason", "fallback_reason").equals(
        first.drop("computed_at", "reason", "fallback_reason")
    )


def test_a_drawdown_beyond_the_limit_flattens_the_book_until_reset(tmp_path):
    db = tmp_path / "wh.duckdb"
    _seed(db)
    with duckdb.connect(str(db)) as conn:  # a stored record that lost 30 % on one name
        conn.execute(
            "INSERT INTO portfolio.allocations VALUES (DATE '2019-04-30', 'AAPL', 1.0, 'risky', 'kelly', "
            "'kelly', NULL, 'test', 'none', now()), (DATE '2019-04-30', 'CASH', 0.0, 'cash', 'kelly', 'kelly', "
            "NULL, 'test', 'none', now())"
        )
        conn.execute(
            "UPDATE market.ohlcv SET close = close * 0.7, adj_close = adj_close * 0.7 "
            "WHERE ticker = 'AAPL' AND date > DATE '2019-04-30'"
        )
    resources = {"warehouse": WarehouseResource(database=str(db)), "ollama": OllamaResource()}
    assert dg.materialize(signal_assets[:1], resources=resources, partition_key="2019-05-01").success
    flat = dg.materialize(portfolio_assets, resources=resources, partition_key="2019-05-01")
    assert flat.success
    day = _q(db, "SELECT * FROM portfolio.allocations WHERE as_of = DATE '2019-05-01'")
    assert day.filter(pl.col("ticker") == "CASH")["weight"][0] == 1.0
    assert (day.filter(pl.col("ticker") != "CASH")["binding_limit"] == "kill_switch").all()
    config = {"ops": {"portfolio__allocations": {"config": {"kill_switch_reset": "2019-05-01"}}}}
    reset = dg.materialize(
        portfolio_assets, resources=resources, partition_key="2019-05-01", run_config=config
    )
    assert reset.success
    day = _q(db, "SELECT * FROM portfolio.allocations WHERE as_of = DATE '2019-05-01'")
    assert "kill_switch" not in set(day["binding_limit"])


def test_the_backtest_replays_the_allocations_beside_baselines_and_logs_every_trial(
    tmp_path, isolated_pm_home
):
    db = tmp_path / "wh.duckdb"
    _seed(db)
    resources = {"warehouse": WarehouseResource(database=str(db)), "ollama": OllamaResource()}
    assert dg.materialize(signal_assets[:1], resources=resources, tags=TAGS).success
    assert dg.materialize(portfolio_assets, resources=resources, tags=TAGS).success
    first = dg.materialize(backtest_assets, resources=resources)
    assert first.success
    metrics = _q(db, "SELECT * FROM backtest.metrics")
    assert set(metrics["strategy"]) == {"strategy", "equal_weight", "inverse_vol", "buy_and_hold"}
    equity = _q(db, "SELECT * FROM backtest.equity WHERE strategy = 'strategy' ORDER BY date")
    assert equity["date"][0] == dt.date(2019, 5, 1) and equity["equity"][0] == 1_000_000.0
    assert (equity["costs"] >= 0).all() and equity["costs"].sum() > 0  # it traded, and paid for it
    runs = _q(db, "SELECT * FROM backtest.runs")
    assert runs.height == 1 and runs["git_sha"][0] != "" and runs["data_start"][0] == dt.date(2019, 5, 1)
    # the run's regime and capacity tables, written with it, and their headline in the metadata
    regimes = _q(db, "SELECT * FROM backtest.regimes")
    capacity = _q(db, "SELECT * FROM backtest.capacity")
    assert set(regimes["run_id"]) == set(capacity["run_id"]) == set(runs["run_id"])
    assert set(capacity["strategy"]) == set(metrics["strategy"]) and set(capacity["k"]) == {1.0, 0.5}
    assert regimes.height > 0 and set(regimes["regime_kind"]) <= {"volatility", "trend", "hmm"}
    worst = regimes.filter(pl.col("is_worst")).group_by("strategy", "regime_kind").len()
    assert (worst["len"] == 1).all()
    meta = first.asset_materializations_for_node("backtest__run")[0].metadata
    assert (
        "| strategy | regime_kind |" in meta["regimes"].value and "| strategy | k |" in meta["capacity"].value
    )
    ours = regimes.filter(pl.col("strategy") == "strategy")
    assert ours.height > 0 and meta["worst_regime_sharpe"].value == ours["sharpe_annualized"].min()
    # the seeded bars are close-only: no ADV prices any trade, so the capacity is unknown, not inf
    assert capacity["capacity"].is_null().all() and (capacity["unpriced_trades"] == capacity["trades"]).all()
    assert "capacity_usd" not in meta and meta["capacity_unpriced_trades"].value > 0
    # the run's offline tearsheet, linked from the metadata, and the equity picture inline
    sheet = Path(meta["tearsheet"].value)
    assert (
        sheet == isolated_pm_home / "reports" / "backtest" / f"{runs['run_id'][0]}.html" and sheet.is_file()
    )
    page = sheet.read_text(encoding="utf-8")
    assert "http://" not in page and "https://" not in page
    for words in (
        "Equity and drawdown vs the baselines",
        "Drawdown periods",
        "PSR (SR* = 0)",
        "DSR (deflated",
    ):
        assert words in page, words
    assert re.findall(r"<th>(strategy|equal_weight|inverse_vol|buy_and_hold)</th>", page)[:4] == [
        "strategy",
        "equal_weight",
        "inverse_vol",
        "buy_and_hold",
    ]
    shown = {r.data["strategy"]: r.data for r in meta["metrics"].records}
    assert set(shown) == set(metrics["strategy"]) and all("dsr" in r and "psr" in r for r in shown.values())
    plot = meta["equity_plot"].value
    assert plot.startswith("![equity and drawdown") and "(data:image/png;base64," in plot
    assert base64.b64decode(plot.split(",", 1)[1].rstrip(")"))[:8] == b"\x89PNG\r\n\x1a\n"
    # the same configuration again is the same trial; other costs are a new one
    assert dg.materialize(backtest_assets, resources=resources).success
    assert _q(db, "SELECT count(*) n FROM backtest.trials")["n"][0] == 1
    config = {"ops": {"backtest__run": {"config": {"commission_bps": 10.0}}}}
    again = dg.materialize(backtest_assets, resources=resources, run_config=config)
    assert again.success and _q(db, "SELECT count(*) n FROM backtest.trials")["n"][0] == 2
    meta = again.asset_materializations_for_node("backtest__run")[0].metadata
    assert meta["trials"].value == 2.0 and "sharpe_equal_weight" in meta
