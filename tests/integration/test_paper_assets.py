"""``paper/account`` and ``paper/orders`` on a temporary DuckDB: the hand-checked account through
the assets, re-runs that change nothing, day-by-day runs equal to a range run, and halts."""

from __future__ import annotations

import base64
import datetime as dt
import json
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from model_code.warehouse import Warehouse
from model_code.warehouse.store import apply_ddl
from pm_assets.paper import paper_assets
from pm_resources import WarehouseResource
from pm_resources.alerts import AlertsResource
from tests.unit.test_paper_ledger import D, hand_allocations, hand_bars

STAMP = dt.datetime(2019, 1, 9, tzinfo=dt.UTC)
TAGS = {ASSET_PARTITION_RANGE_START_TAG: D[0].isoformat(), ASSET_PARTITION_RANGE_END_TAG: D[-1].isoformat()}
OP = "paper_ledger"


def _seed(db, allocations: pl.DataFrame) -> None:
    with duckdb.connect(str(db)) as conn:
        apply_ddl(conn)
        wh = Warehouse(conn)
        bars = hand_bars().with_columns(
            high=pl.max_horizontal("open", "close"),
            low=pl.min_horizontal("open", "close"),
            source=pl.lit("test"),
            ingested_at=pl.lit(STAMP),
        )
        wh.upsert("market.ohlcv", bars, ["ticker", "date"])
        rows = allocations.with_columns(
            sleeve=pl.when(pl.col("ticker") == "CASH").then(pl.lit("cash")).otherwise(pl.lit("risky")),
            method=pl.lit("kelly"),
            method_used=pl.lit("kelly"),
            binding_limit=pl.lit("none"),
            computed_at=pl.lit(STAMP),
        )
        wh.upsert("portfolio.allocations", rows, ["as_of", "ticker"])


def _alerts(tmp_path) -> AlertsResource:
    return AlertsResource(alerts_dir=str(tmp_path / "alerts"))


def _q(db, sql):
    with duckdb.connect(str(db), read_only=True) as conn:
        return conn.sql(sql).pl()


def _config(**extra):
    return {"ops": {OP: {"config": {"initial_cash": 10_000.0, **extra}}}}


def _orders_metadata(result) -> dict:
    orders = dg.AssetKey(["paper", "orders"])
    return next(m for m in result.asset_materializations_for_node(OP) if m.asset_key == orders).metadata


def _snapshot(db) -> dict[str, pl.DataFrame]:
    out = {}
    for table in ("orders", "fills", "positions", "cash", "equity", "trades"):
        frame = _q(db, f"SELECT * FROM paper.{table}")
        frame = frame.drop([c for c in ("created_at", "computed_at") if c in frame.columns])
        out[table] = frame.sort(frame.columns)
    return out


def test_the_assets_keep_the_hand_checked_ledger_and_reconcile(tmp_path, isolated_pm_home):
    db = tmp_path / "wh.duckdb"
    _seed(db, hand_allocations())
    resources = {"warehouse": WarehouseResource(database=str(db)), "alerts": _alerts(tmp_path)}
    result = dg.materialize(paper_assets, resources=resources, tags=TAGS, run_config=_config())
    assert result.success
    equity = _q(db, "SELECT * FROM paper.equity ORDER BY date")
    # the numbers of tests/unit/test_paper_ledger.py, computed there by hand
    assert [round(e, 2) for e in equity["equity"]] == [10000.00, 10030.96, 10230.96, 10104.38, 10184.26]
    assert (equity["account"] == "paper").all()
    check = result.get_asset_check_evaluations()[0]
    assert check.check_name == "paper_reconciliation" and check.passed
    assert check.metadata["max_equity_error"].value < 0.005
    # the backtest of the same allocations on adjusted prices: the dividend is the only difference
    assert equity["drift"].abs().max() < 1e-3 and equity["drift"][2] == 0.0
    meta = result.asset_materializations_for_node(OP)[0].metadata
    assert round(meta["equity"].value, 2) == 10184.26 and meta["n_fills"].value == 6.0
    assert meta["halted"].value == 0.0
    # the account's offline tearsheet, linked from the metadata, and the drift picture inline
    sheet = Path(meta["tearsheet"].value)
    assert sheet == isolated_pm_home / "reports" / "paper" / "paper.html" and sheet.is_file()
    page = sheet.read_text(encoding="utf-8")
    assert "http://" not in page and "https://" not in page
    for words in (
        "Equity and drawdown vs the backtest",
        "drift from the backtest",
        "PSR (SR* = 0)",
        "DSR (deflated",
    ):
        assert words in page, words
    assert "<dd>10,184.26</dd>" in page  # the hand-checked last equity
    placed = _orders_metadata(result)
    assert placed["orders"].records and len(placed["orders"].records) == int(placed["n_orders"].value)
    plot = meta["equity_drift_plot"].value
    assert "(data:image/png;base64," in plot
    assert base64.b64decode(plot.split(",", 1)[1].rstrip(")"))[:8] == b"\x89PNG\r\n\x1a\n"
    positions = _q(db, "SELECT * FROM paper.positions WHERE date = DATE '2019-01-08' ORDER BY ticker")
    assert positions["ticker"].to_list() == ["A", "C"]
    dividend = _q(db, "SELECT amount FROM paper.trades WHERE kind = 'dividend'")["amount"].to_list()
    assert [round(a, 2) for a in dividend] == [50.00]
    fills = _q(db, "SELECT * FROM paper.fills")
    assert fills.height == _q(db, "SELECT count(*) AS n FROM paper.orders")["n"][0]

    before = _snapshot(db)
    for key in (D[2].isoformat(), D[3].isoformat()):
        again = dg.materialize(paper_assets, resources=resources, partition_key=key, run_config=_config())
        assert again.success and again.get_asset_check_evaluations()[0].passed
    assert dg.materialize(paper_assets, resources=resources, tags=TAGS, run_config=_config()).success
    after = _snapshot(db)
    for table, frame in before.items():
        assert after[table].equals(frame), table


def test_nightly_runs_day_by_day_equal_one_range_run(tmp_path):
    ranged, nightly = tmp_path / "range.duckdb", tmp_path / "nightly.duckdb"
    for db in (ranged, nightly):
        _seed(db, hand_allocations())
    dg.materialize(
        paper_assets,
        resources={"warehouse": WarehouseResource(database=str(ranged)), "alerts": _alerts(tmp_path)},
        tags=TAGS,
        run_config=_config(),
    )
    for day in D:
        assert dg.materialize(
            paper_assets,
            resources={"warehouse": WarehouseResource(database=str(nightly)), "alerts": _alerts(tmp_path)},
            partition_key=day.isoformat(),
            run_config=_config(),
        ).success
    a, b = _snapshot(ranged), _snapshot(nightly)
    for table in a:
        assert a[table].equals(b[table]), table


def test_a_halted_account_places_no_order_and_says_why_until_reset(tmp_path):
    db = tmp_path / "wh.duckdb"
    extra = pl.DataFrame(
        [(D[3], "A", 0.2), (D[3], "CASH", 0.8), (D[4], "A", 0.3), (D[4], "CASH", 0.7)],
        schema=["as_of", "ticker", "weight"],
        orient="row",
    )
    _seed(db, pl.concat([hand_allocations(), extra]))
    resources = {"warehouse": WarehouseResource(database=str(db)), "alerts": _alerts(tmp_path)}
    tight = _config(kill_switch_drawdown=0.01)  # D4 is 1.24 % below D3's peak
    result = dg.materialize(paper_assets, resources=resources, tags=TAGS, run_config=tight)
    assert result.success
    assert _q(db, "SELECT count(*) AS n FROM paper.orders WHERE as_of >= DATE '2019-01-07'")["n"][0] == 0
    halted = _q(db, "SELECT date, halted, halt_note FROM paper.equity ORDER BY date")
    assert halted["halted"].to_list() == [None, None, None, "kill_switch", "kill_switch"]
    assert "kill switch: drawdown 1.2%" in halted["halt_note"][4]
    meta = result.asset_materializations_for_node(OP)[0].metadata
    assert meta["halted"].value == 1.0 and "kill switch" in meta["halt_reason"].value
    placed = _orders_metadata(result)
    assert placed["orders"].records  # the sessions before the halt ordered; the table shows them
    sent = [json.loads(line) for line in _alerts(tmp_path).path.read_text().splitlines()]
    assert [(a["kind"], a["date"], a["halt"]) for a in sent] == [("paper_halt", "2019-01-07", "kill_switch")]

    reset = _config(kill_switch_drawdown=0.01, reset=D[3].isoformat())
    rerun = dg.materialize(
        paper_assets, resources=resources, partition_key=D[4].isoformat(), run_config=reset
    )
    assert rerun.success
    assert _q(db, "SELECT halted FROM paper.equity WHERE date = DATE '2019-01-08'")["halted"][0] is None
    # D4's order was never placed (halted), so nothing fills on D5; D5's allocation is ordered now
    assert _q(db, "SELECT count(*) AS n FROM paper.fills WHERE date = DATE '2019-01-08'")["n"][0] == 0
    placed = _q(db, "SELECT ticker FROM paper.orders WHERE as_of = DATE '2019-01-08' ORDER BY ticker")
    assert placed["ticker"].to_list() == ["A", "C"]  # A to 30 %, C (not allocated) sold
    assert rerun.get_asset_check_evaluations()[0].passed
