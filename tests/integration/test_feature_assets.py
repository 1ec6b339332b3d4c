"""Feature and target assets over the bundled data, materialized into a temporary DuckDB."""

import dagster as dg
import duckdb
import polars as pl
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from pm_assets.features import feature_assets
from pm_assets.market import market_assets
from pm_resources import MarketDataResource, WarehouseResource

ALL = [*market_assets, *feature_assets]


def _materialize(db, start, end=None, selection=None):
    tags = {ASSET_PARTITION_RANGE_START_TAG: start, ASSET_PARTITION_RANGE_END_TAG: end} if end else {}
    result = dg.materialize(
        ALL,
        resources={"warehouse": WarehouseResource(database=str(db)), "market_data": MarketDataResource()},
        partition_key=None if end else start,
        tags=tags,
        selection=selection,
    )
    assert result.success
    return result


def _table(db, sql):
    with duckdb.connect(str(db), read_only=True) as conn:
        return conn.sql(sql).pl()


def test_features_and_targets_are_point_in_time_and_order_independent(tmp_path):
    db = tmp_path / "wh.duckdb"
    # Half a year of history, then the last two sessions of it one partition at a time.
    _materialize(
        db,
        "2018-07-02",
        "2018-12-27",
        selection=[dg.AssetKey(["market", "ohlcv"]), dg.AssetKey(["market", "universe"])],
    )
    _materialize(
        db,
        "2018-12-28",
        "2018-12-31",
        selection=[dg.AssetKey(["market", "ohlcv"]), dg.AssetKey(["market", "universe"])],
    )
    _materialize(db, "2018-12-31", selection=[dg.AssetKey(["features", "daily"])])
    _materialize(db, "2018-12-28", selection=[dg.AssetKey(["features", "daily"])])
    nightly = _table(db, "SELECT * EXCLUDE (computed_at) FROM features.daily ORDER BY ticker, date")

    # Same two sessions as one range run on a fresh file: identical numbers.
    fresh = tmp_path / "fresh.duckdb"
    _materialize(
        fresh,
        "2018-07-02",
        "2018-12-31",
        selection=[dg.AssetKey(["market", "ohlcv"]), dg.AssetKey(["market", "universe"])],
    )
    _materialize(fresh, "2018-12-28", "2018-12-31", selection=[dg.AssetKey(["features", "daily"])])
    ranged = _table(fresh, "SELECT * EXCLUDE (computed_at) FROM features.daily ORDER BY ticker, date")
    assert nightly.height == 46 and nightly.equals(ranged)
    gspc = nightly.filter(pl.col("ticker") == "^GSPC")
    aapl = nightly.filter(pl.col("ticker") == "AAPL")
    assert gspc["adx_14"].null_count() == 0 and gspc["volume_z_20"].null_count() == 0
    assert aapl["adx_14"].null_count() == aapl.height  # close-only: no fabricated high/low

    # Targets: run the later partition first, then an earlier one; known values survive.
    _materialize(db, "2018-12-31", selection=[dg.AssetKey(["features", "targets"])])
    closed = _table(
        db, "SELECT ticker, date, fwd_ret_1 FROM features.targets WHERE target_date_1 = DATE '2018-12-31'"
    )
    assert closed.height == 23 and closed["fwd_ret_1"].null_count() == 0
    _materialize(db, "2018-12-27", selection=[dg.AssetKey(["features", "targets"])])
    again = _table(
        db, "SELECT ticker, date, fwd_ret_1 FROM features.targets WHERE target_date_1 = DATE '2018-12-31'"
    )
    assert again.sort("ticker").equals(closed.sort("ticker"))
    # A target whose date has not closed in any run so far stays unknown.
    assert (
        _table(
            db,
            "SELECT count(*) n FROM features.targets WHERE date = DATE '2018-12-31' AND fwd_ret_1 IS NOT NULL",
        )["n"][0]
        == 0
    )


def test_a_ranged_features_run_gives_each_partition_its_own_rows(tmp_path):
    db = tmp_path / "wh.duckdb"
    result = _materialize(db, "2018-12-20", "2018-12-31")
    stored = _table(db, "SELECT date, count(*) n FROM features.daily GROUP BY date")
    per_day = {str(d): float(n) for d, n in stored.iter_rows()}
    events = result.asset_materializations_for_node("features__daily")
    assert {e.partition for e in events} == set(per_day)
    for event in events:
        assert event.metadata["rows_written"].value == per_day[event.partition]
        assert event.metadata["run_partitions"].value == float(len(per_day))
    summary = events[0].metadata["feature_summary"]
    assert [c.name for c in summary.schema.columns] == ["feature", "null_share", "mean", "std"]
    assert events[0].metadata["null_share_plot"].value.startswith("![")
    targets = result.asset_materializations_for_node("features__targets")
    assert all("targets_closed_1d" in e.metadata and "rows_dated" in e.metadata for e in targets)
