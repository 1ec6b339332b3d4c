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


def _run(resources, *, start: str, end: str | None = None, raise_on_error: bool = True, config=None):
    tags = {ASSET_PARTITION_RANGE_START_TAG: start, ASSET_PARTITION_RANGE_END_TAG: end} if end else {}
    return dg.materialize(
        market_assets,
        resources=resources,
        partition_key=None if end else start,
        tags=tags,
        raise_on_error=raise_on_error,
        run_config={"ops": {"market__ohlcv": {"config": config}}} if config else None,
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
    assert len(checks) == 10
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


def _meta(result, check: str) -> dict:
    evaluation = next(c for c in result.get_asset_check_evaluations() if c.check_name == check)
    return {"passed": evaluation.passed, "severity": evaluation.severity.value} | {
        k: v.value for k, v in evaluation.metadata.items()
    }


def test_a_5pct_redelivery_is_recorded_replaced_and_warned(tmp_path):
    """The probe: a file with every AAPL price +5 % re-delivered over 19 stored bars."""
    db = tmp_path / "wh.duckdb"
    clean = clean_bars(tickers=("AAPL", "MSFT"), start=dt.date(2019, 1, 2), n=19).drop(
        "_unparseable", "source"
    )
    good, bumped = tmp_path / "good.parquet", tmp_path / "bumped.parquet"
    clean.write_parquet(good)
    aapl = pl.col("ticker") == "AAPL"
    prices = ("open", "high", "low", "close", "adj_close")
    clean.with_columns(
        [pl.when(aapl).then(pl.col(c) * 1.05).otherwise(pl.col(c)).alias(c) for c in prices]
    ).write_parquet(bumped)
    start, end = str(clean["date"].min()), str(clean["date"].max())
    assert _run(
        _resources(db, fallback_order=["parquet"], parquet_path=str(good)), start=start, end=end
    ).success
    before = _query(db, "SELECT close FROM market.ohlcv WHERE ticker = 'AAPL' ORDER BY date")["close"]

    result = _run(_resources(db, fallback_order=["parquet"], parquet_path=str(bumped)), start=start, end=end)
    assert result.success  # a WARN: downstream goes on, with the corrected history
    meta = _meta(result, "ohlcv_restatements")
    assert meta["passed"] is False and meta["severity"] == "WARN"
    assert (meta["bars_restated"], meta["replaced"], meta["tickers_restated"]) == (19.0, 19.0, 1.0)
    assert meta["max_relative_price_change"] == pytest.approx(0.05)
    after = _query(db, "SELECT close FROM market.ohlcv WHERE ticker = 'AAPL' ORDER BY date")["close"]
    assert after.to_list() == pytest.approx((before * 1.05).to_list())
    assert _query(db, "SELECT count(*) n FROM market.ohlcv_revisions")["n"][0] == 19

    # The other policy keeps the stored bars and quarantines the re-delivery.
    back = tmp_path / "back.parquet"
    clean.write_parquet(back)
    kept = _run(
        _resources(db, fallback_order=["parquet"], parquet_path=str(back)),
        start=start,
        end=end,
        raise_on_error=False,
        config={"restatement_policy": "quarantine"},
    )
    assert _meta(kept, "ohlcv_restatements")["quarantined"] == 19.0
    unchanged = _query(db, "SELECT close FROM market.ohlcv WHERE ticker = 'AAPL' ORDER BY date")["close"]
    assert unchanged.to_list() == after.to_list()
    assert _query(db, "SELECT count(*) n FROM market.quarantine WHERE reason = 'restated_bar'")["n"][0] == 19
    # Half the window quarantined: the blocking rate check stops downstream until someone looks.
    assert _meta(kept, "ohlcv_quarantine_rate")["passed"] is False


def test_nightly_10x_spike_is_held_then_rejected_and_its_reversal_stored(tmp_path):
    """The probe: a one-day 10x spike in nightly operation, then the next night's reversal."""
    db = tmp_path / "wh.duckdb"
    bars = clean_bars(tickers=("AAPL",), start=dt.date(2019, 1, 2), n=12).drop("_unparseable", "source")
    spike = pl.int_range(pl.len()) == 10
    prices = ("open", "high", "low", "close", "adj_close")
    bars = bars.with_columns(
        [pl.when(spike).then(pl.col(c) * 10).otherwise(pl.col(c)).alias(c) for c in prices]
    )
    path = tmp_path / "bars.parquet"
    bars.write_parquet(path)
    resources = _resources(db, fallback_order=["parquet"], parquet_path=str(path))
    days = [str(d) for d in bars["date"]]
    assert _run(resources, start=days[0], end=days[9]).success

    night = _run(resources, start=days[10])
    assert night.success
    meta = night.asset_materializations_for_node("market__ohlcv")[0].metadata
    assert (meta["rows_received"].value, meta["rows_held"].value, meta["rows_written"].value) == (
        1.0,
        1.0,
        0.0,
    )
    jumps = _meta(night, "ohlcv_jumps")
    assert jumps["passed"] is False and jumps["jumps_held"] == 1.0 and jumps["jumps"] == 0.0
    assert _query(db, "SELECT count(*) n FROM market.ohlcv")["n"][0] == 10

    reversal = _run(resources, start=days[11])
    assert reversal.success
    jumps = _meta(reversal, "ohlcv_jumps")
    assert jumps["passed"] and jumps["held_rejected"] == 1.0
    stored = _query(db, "SELECT date FROM market.ohlcv ORDER BY date")["date"].cast(pl.String).to_list()
    assert stored == days[:10] + [days[11]]
    assert _query(db, "SELECT reason FROM market.quarantine")["reason"].to_list() == ["price_spike"]


def test_each_partition_of_a_ranged_run_describes_its_own_session(tmp_path):
    db = tmp_path / "wh.duckdb"
    result = _run(_resources(db), start="2018-12-17", end="2018-12-31")
    events = result.asset_materializations_for_node("market__ohlcv")
    stored = _query(db, "SELECT date, count(*) n FROM market.ohlcv GROUP BY date")
    per_day = {str(d): float(n) for d, n in stored.iter_rows()}
    assert len(events) == len(per_day) == 10
    for event in events:
        meta = event.metadata
        assert meta["rows_in_window"].value == per_day[event.partition], event.partition
        assert meta["run_partitions"].value == 10.0
        assert meta["rows_received"].value == 230.0  # the run's total stays beside them
        assert meta["coverage"].value == 1.0
    assert "coverage_by_session" in events[-1].metadata and "coverage_plot" in events[-1].metadata
    assert events[-1].metadata["coverage_by_session"].schema.columns[0].name == "date"
