"""The jobs end to end, in process, against a temporary DAGSTER_HOME and DuckDB file.

Runs go through ``dg.execute_job`` and the shipped executor, as ``make demo``'s do.
``ml_training_job`` trains on a stored history of the bundled data, then ``nightly_job`` runs
for two consecutive sessions: every asset of the job materializes, every check has a result,
and rows land in every table the job writes. A second case feeds a parquet whose window fails
the blocking ``ohlcv_quarantine_rate`` check: the downstream steps are skipped and write nothing.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from pm_assets.market.ohlcv import MAX_PARTITIONS_PER_RUN
from pm_assets.partitions import trading_days
from pm_definitions import definitions
from pm_resources import build_resources
from tests.conftest import clean_bars, shipped_dagster_home

ROOT = Path(__file__).resolve().parents[2]
HISTORY = ("2021-06-01", "2022-12-22")
NIGHTS = ("2022-12-23", "2022-12-27")
HISTORY_ASSETS = [
    dg.AssetKey(["market", "universe"]),
    dg.AssetKey(["market", "ohlcv"]),
    dg.AssetKey(["features", "daily"]),
    dg.AssetKey(["features", "targets"]),
]
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
ML_CONFIG = {
    "ops": {
        "ml__model": {
            "config": {
                "train_years": 1.0,
                "valid_months": 3,
                "n_estimators": 60,
                "importance_repeats": 1,
                "threads": 2,
            }
        }
    }
}
# The tables nightly_job writes, with the rows each night must add (forecasts.accuracy and
# forecasts.ml_predictions, which only the champions governance promoted write: below).
NIGHTLY_TABLES = {
    "market.ohlcv": "date = $night",
    "market.trading_sessions": "date = $night",
    "features.daily": "date = $night",
    "features.targets": "target_date_1 = $night",
    "forecasts.predictions": "as_of = $night",
    "forecasts.fit_log": "as_of = $night",
    "forecasts.ensemble_weights": "as_of = $night",
    "signals.daily": "as_of = $night",
    "portfolio.allocations": "as_of = $night",
    "paper.cash": "date = $night",
    "paper.equity": "date = $night",
    "monitoring.freshness": "as_of = $night",
    "monitoring.model_age": "as_of = $night",
}


def _instance(tmp_path: Path, monkeypatch) -> dg.DagsterInstance:
    home = shipped_dagster_home(tmp_path / "dagster_home")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return dg.DagsterInstance.from_config(str(home))


def _defs() -> dg.Definitions:
    """The shipped definitions, with resources read from this test's environment."""
    d = definitions.defs
    return dg.Definitions(
        assets=list(d.assets or []),
        jobs=list(d.jobs or []),
        schedules=list(d.schedules or []),
        resources=build_resources(),
        executor=d.executor,
    )


def nightly_job() -> dg.JobDefinition:
    return _defs().resolve_job_def("nightly_job")


def ml_training_job() -> dg.JobDefinition:
    return _defs().resolve_job_def("ml_training_job")


def _count(db: Path, table: str, where: str = "true", night: str | None = None) -> int:
    with duckdb.connect(str(db), read_only=True) as conn:
        sql = f"SELECT count(*) FROM {table} WHERE {where.replace('$night', '?')}"
        params = [dt.date.fromisoformat(night)] * where.count("$night") if night else []
        return conn.execute(sql, params).fetchone()[0]


def _run(instance, job, *, keys=None, selection=None, config=None):
    """Run ``job`` through the shipped executor in this process, as ``make demo`` does."""
    tags = {}
    if keys and len(keys) > 1:
        tags = {ASSET_PARTITION_RANGE_START_TAG: keys[0], ASSET_PARTITION_RANGE_END_TAG: keys[-1]}
    elif keys:
        tags = {"dagster/partition": keys[0]}
    return dg.execute_job(
        dg.reconstructable(job),
        instance=instance,
        run_config={**QUIET, **(config or {})},
        tags=tags,
        asset_selection=selection,
        raise_on_error=False,
    )


def _what_it_lacks(instance: dg.DagsterInstance, key: dg.AssetKey) -> list[str]:
    """What of "a float, and a table or a picture" the asset's latest materialization lacks."""
    event = instance.get_latest_materialization_event(key)
    if event is None or event.asset_materialization is None:
        return ["no materialization"]
    values = list(event.asset_materialization.metadata.values())
    missing = []
    if not any(isinstance(v, dg.FloatMetadataValue) for v in values):
        missing.append("float")
    if not any(
        isinstance(v, dg.TableMetadataValue)
        or (isinstance(v, dg.MarkdownMetadataValue) and "](data:image/png;base64," in (v.value or ""))
        for v in values
    ):
        missing.append("table or picture")
    return missing


def _materialized(result) -> set[dg.AssetKey]:
    return {e.asset_key for e in result.get_asset_materialization_events()}


def test_training_then_two_nightly_sessions_materialize_everything(tmp_path, monkeypatch):
    instance = _instance(tmp_path, monkeypatch)
    db = Path(build_resources()["warehouse"].database)
    keys = trading_days.get_partition_keys_in_range(dg.PartitionKeyRange(*HISTORY))
    for i in range(0, len(keys), MAX_PARTITIONS_PER_RUN):
        chunk = keys[i : i + MAX_PARTITIONS_PER_RUN]
        assert _run(instance, nightly_job, keys=chunk, selection=HISTORY_ASSETS).success, chunk

    trained = _run(instance, ml_training_job, config=ML_CONFIG)
    assert trained.success
    assert _materialized(trained) == {dg.AssetKey(["ml", "model"])}
    assert _count(db, "models.registry") == 4 and _count(db, "models.feature_importance") > 0
    # Governance decided every horizon, promoting a model only where it beat the random walk.
    champions = _count(db, "models.registry", "status = 'champion'")
    assert _count(db, "models.decisions") == 4
    assert _count(db, "models.decisions", "action = 'promote'") == champions
    assert _count(db, "models.decisions", "action = 'abstain'") == 4 - champions

    job = nightly_job()
    job_assets = set(job.asset_layer.executable_asset_keys)
    job_checks = set(job.asset_layer.asset_graph.asset_check_keys)
    assert len(job_assets) == 15 and len(job_checks) == 14
    for night in NIGHTS:
        before = {t: _count(db, t, w, night) for t, w in NIGHTLY_TABLES.items()}
        assert set(before.values()) == {0}, before
        result = _run(instance, nightly_job, keys=[night])
        assert result.success, night
        assert _materialized(result) == job_assets, night
        evaluated = {e.asset_check_key for e in result.get_asset_check_evaluations()}
        assert evaluated == job_checks, night
        for table, where in NIGHTLY_TABLES.items():
            assert _count(db, table, where, night) > 0, f"{table} got no rows on {night}"
        [backtest] = [
            e for e in result.get_asset_materialization_events() if e.asset_key.path == ["backtest", "run"]
        ]
        last_backtest_note = backtest.materialization.metadata["why_empty"].value
        run = instance.get_run_by_id(result.run_id)
        assert run.tags.get("dagster/partition") == night
        assert run.tags.get("pm/pid") == str(os.getpid())  # the shipped executor ran it
    # Two nights of allocations are too short a record to score: the backtest says so.
    assert _count(db, "backtest.metrics") == 0
    assert "session(s) since the first allocation" in last_backtest_note
    # The first night's 1-day forecasts closed on the second night: they are scored then.
    assert _count(db, "forecasts.accuracy", "evaluated_through = $night", NIGHTS[0]) == 0
    assert _count(db, "forecasts.accuracy", "evaluated_through = $night AND horizon = 1", NIGHTS[1]) > 0
    # Monitoring judges them too: one realized forecast per ticker is too few to judge a ticker.
    assert _count(db, "monitoring.model_health", "as_of = $night", NIGHTS[0]) == 0
    assert _count(db, "monitoring.model_health", "as_of = $night AND horizon = 1", NIGHTS[1]) > 0
    assert _count(db, "monitoring.model_health", "ticker <> '*' AND (judged OR decayed)") == 0
    # Signals: one per ticker with a bar each night; the scorecard waits for a closed horizon.
    assert _count(db, "signals.daily") == 2 * _count(db, "features.daily", "date = $night", NIGHTS[-1])
    # ML forecasts come from the champions only; a horizon without one abstains (no rows).
    ml_rows = _count(db, "forecasts.ml_predictions")
    assert ml_rows == 2 * champions * _count(db, "features.daily", "date = $night", NIGHTS[-1])
    # In the history runs (126 sessions each) every partition describes its own session.
    event = (
        instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey(["market", "ohlcv"]), asset_partitions=[HISTORY[0]]),
            limit=1,
        )
        .records[0]
        .asset_materialization
    )
    assert event.metadata["run_partitions"].value == float(MAX_PARTITIONS_PER_RUN)
    assert event.metadata["rows_in_window"].value == float(
        _count(db, "market.ohlcv", "date = $night", HISTORY[0])
    )
    # What the UI shows: every asset's latest materialization has a float (charted across
    # materializations) and a table or a picture, or says why it is empty (backtest/run after two
    # nights of allocations: too short a record).
    lacking = {
        "/".join(key.path): _what_it_lacks(instance, key)
        for key in sorted(job_assets | {dg.AssetKey(["ml", "model"])}, key=lambda k: k.path)
    }
    lacking = {k: v for k, v in lacking.items() if v}
    assert not lacking, f"latest materializations lacking metadata: {lacking}"


def _bad_window_parquet(path: Path) -> Path:
    """Twelve tickers on one session; three have a high below their close (25 % quarantined)."""
    bars = clean_bars(tickers=[f"T{i:02d}" for i in range(12)], start=dt.date(2019, 1, 2), n=5)
    day = dt.date(2019, 1, 8)
    broken = pl.col("ticker").is_in(["T00", "T01", "T02"]) & (pl.col("date") == day)
    bars = bars.with_columns(high=pl.when(broken).then(pl.col("close") * 0.9).otherwise(pl.col("high")))
    bars.select("ticker", "date", "open", "high", "low", "close", "adj_close", "volume").write_parquet(path)
    return path


def test_a_failing_blocking_check_skips_downstream_and_they_write_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("PM_SOURCES", "parquet")
    monkeypatch.setenv("PM_PARQUET_PATH", str(_bad_window_parquet(tmp_path / "bars.parquet")))
    instance = _instance(tmp_path, monkeypatch)
    db = Path(build_resources()["warehouse"].database)
    assert _run(instance, nightly_job, keys=["2019-01-07"], selection=HISTORY_ASSETS).success

    result = _run(instance, nightly_job, keys=["2019-01-08"])
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks["ohlcv_quarantine_rate"] is False
    assert _materialized(result) == {dg.AssetKey(["market", "universe"]), dg.AssetKey(["market", "ohlcv"])}
    # Dagster fails the ohlcv step on a blocking check and does not start its downstream steps.
    assert not result.success
    started = {e.step_key for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_START}
    downstream = {
        "features__daily",
        "features__targets",
        "forecasts__predictions",
        "ml__predictions",
        "signals__daily",
    }
    assert "market__ohlcv" in started and not downstream & started
    failed = {e.step_key for e in result.all_events if e.is_step_failure}
    assert failed == {"market__ohlcv"}
    night = "2019-01-08"
    assert _count(db, "market.quarantine", "date = $night", night) == 3
    assert _count(db, "market.ohlcv", "date = $night", night) == 9
    for table in ("features.daily", "features.targets", "forecasts.predictions", "forecasts.ml_predictions"):
        assert (
            _count(db, table, "date = $night" if table.startswith("features") else "as_of = $night", night)
            == 0
        )
    assert _count(db, "forecasts.predictions") == 0 and _count(db, "forecasts.ml_predictions") == 0
