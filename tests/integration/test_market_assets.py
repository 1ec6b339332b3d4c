"""``dg.materialize`` of the market assets into a temporary DuckDB file."""

import datetime as dt

import dagster as dg
import duckdb
import polars as pl
import pytest
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from pm_assets.market import market_assets
from pm_resources import MarketDataResource, WarehouseResource
from tests.conftest import clean_bars


def _resources(db, **market) -> dict:
    return {"warehouse": WarehouseResource(database=str(db)), "market_data": MarketDataResource(**market)}


def _run(resources, *, start: str, end: str | None = None, raise_on_error: bool = True):
    tags = {ASSET_PARTITION_RANGE_START_TAG: start, ASSET_PARTITION_RANGE_END_TAG: end} if end else {}
    return dg.materialize(
        market_assets,
        resources=resources,
        partition_key=None if end else start,
        tags=tags,
        raise_on_error=raise_on_error,
    )


def _query(db, sql):
    with duckdb.connect(str(db), read_only=True) as conn:
        return conn.sql(sql).pl()


def _checks(result) -> dict[str, bool]:
    return {c.check_name: c.passed for c in result.get_asset_check_evaluations()}


def test_bundled_range_materializes_every_ticker_and_rerun_adds_no_rows(tmp_path):
    db = tmp_path / "wh.duckdb"
    resources = _resources(db)
    result = _run(resources, start="2018-12-17", end="2018-12-31")
    assert result.success
    stored = _query(
        db, "SELECT ticker, count(*) n, min(date) lo, max(date) hi FROM market.ohlcv GROUP BY ticker"
    )
    assert stored.height == 23
    assert set(stored["n"]) == {10}  # 10 sessions: Dec 24 half day counts, Dec 25 holiday doesn't
    meta = result.asset_materializations_for_node("market__ohlcv")[0].metadata
    assert meta["rows_written"].value == 230.0 and meta["tickers"].value == 23.0
    assert meta["rows_quarantined"].value == 0.0
    checks = _checks(result)
    assert len(checks) == 8
    assert checks["ohlcv_price_consistency"] and checks["ohlcv_schema"] and checks["ohlcv_duplicates"]

    again = _run(resources, start="2018-12-17", end="2018-12-31")
    assert again.success
    assert _query(db, "SELECT count(*) n FROM market.ohlcv")["n"][0] == 230
    assert _query(db, "SELECT count(*) n FROM market.universe WHERE active")["n"][0] == 23


def test_single_nightly_partition(tmp_path):
    db = tmp_path / "wh.duckdb"
    result = _run(_resources(db), start="2019-01-02")
    assert result.success
    # ^GSPC/^IXIC end on 2018-12-31, so only the 21 skfolio series have a bar for 2019-01-02.
    assert _query(db, "SELECT count(*) n FROM market.ohlcv")["n"][0] == 21
    assert _query(db, "SELECT count(*) n FROM market.trading_sessions")["n"][0] == 1
    checks = _checks(result)
    assert checks["ohlcv_staleness"] is False  # two tickers had no bars: reported, not fatal


def test_faulty_batch_is_quarantined_and_stored_history_is_untouched(tmp_path):
    db = tmp_path / "wh.duckdb"
    clean = clean_bars(tickers=("AAA", "BBB"), start=dt.date(2019, 1, 2), n=10)
    good = tmp_path / "good.parquet"
    clean.drop("_unparseable", "source").write_parquet(good)
    assert _run(
        _resources(db, fallback_order=["parquet"], parquet_path=str(good)),
        start="2019-01-02",
        end="2019-01-15",
    ).success
    before = _query(db, "SELECT * EXCLUDE (ingested_at) FROM market.ohlcv ORDER BY ticker, date")

    # The same keys arrive again, now broken: high below close, a zero price, a duplicate.
    bad_rows = clean.drop("_unparseable", "source").with_columns(
        high=pl.when(pl.col("ticker") == "AAA").then(pl.col("close") * 0.5).otherwise(pl.col("high")),
        open=pl.when(pl.col("ticker") == "BBB").then(0.0).otherwise(pl.col("open")),
    )
    bad = tmp_path / "bad.parquet"
    bad_rows.write_parquet(bad)
    result = _run(
        _resources(db, fallback_order=["parquet"], parquet_path=str(bad)),
        start="2019-01-02",
        end="2019-01-15",
        raise_on_error=False,
    )
    after = _query(db, "SELECT * EXCLUDE (ingested_at) FROM market.ohlcv ORDER BY ticker, date")
    assert after.equals(before)
    reasons = dict(_query(db, "SELECT reason, count(*) n FROM market.quarantine GROUP BY reason").iter_rows())
    assert reasons == {"high_below_open_close": 10, "non_positive_price": 10}
    checks = _checks(result)
    # Everything received was bad: the blocking quarantine-rate check fails, stored data stays clean.
    assert checks["ohlcv_quarantine_rate"] is False
    assert checks["ohlcv_price_consistency"] is True


def test_a_source_that_fails_outright_fails_the_run_with_its_reason(tmp_path):
    db = tmp_path / "wh.duckdb"
    universe = tmp_path / "universe.yaml"
    universe.write_text("tickers: [AAA]\n")
    resources = _resources(
        db,
        fallback_order=["parquet"],
        parquet_path=str(tmp_path / "missing.parquet"),
        universe_path=str(universe),
    )
    result = _run(resources, start="2019-01-02", raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert failure.step_key == "market__ohlcv"
    description = failure.step_failure_data.user_failure_data.description
    assert "no bars for 2019-01-02..2019-01-02" in description
    assert "missing.parquet does not exist" in description
    assert _query(db, "SELECT count(*) n FROM market.ohlcv")["n"][0] == 0


@pytest.mark.parametrize("key", ["2019-01-05", "2018-12-25"])
def test_weekends_and_holidays_are_not_partitions(key):
    from pm_assets.partitions import trading_days

    assert not trading_days.has_partition_key(key)
