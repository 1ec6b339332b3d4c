"""The Dagster surface: specs snapshot, the duckdb pool, dagster.yaml, jobs and schedules."""

import datetime as dt
from pathlib import Path

import dagster as dg
import yaml
from dagster._config import process_config

from pm_definitions.definitions import defs
from pm_jobs.ml_training import ml_training_schedule
from pm_jobs.nightly import nightly_schedule
from pm_jobs.refit import refit_schedule
from pm_resources import DUCKDB_POOL

ROOT = Path(__file__).resolve().parents[1]

# A change to the asset graph shows up here in review.
EXPECTED_SPECS = {
    "market/universe": {
        "deps": set(),
        "group": "market",
        "kinds": {"duckdb", "python"},
        "partitioned": False,
    },
    "market/ohlcv": {
        "deps": {"market/universe"},
        "group": "market",
        "kinds": {"duckdb", "polars"},
        "partitioned": True,
    },
    "features/daily": {
        "deps": {"market/ohlcv"},
        "group": "features",
        "kinds": {"duckdb", "polars"},
        "partitioned": True,
    },
    "features/targets": {
        "deps": {"market/ohlcv"},
        "group": "features",
        "kinds": {"duckdb", "polars"},
        "partitioned": True,
    },
    "forecasts/fits": {
        "deps": {"market/ohlcv"},
        "group": "fits",
        "kinds": {"duckdb", "statsforecast", "arch", "numpy"},
        "partitioned": False,
    },
    "forecasts/predictions": {
        "deps": {"market/ohlcv", "features/targets", "forecasts/fits"},
        "group": "forecasts",
        "kinds": {"duckdb", "statsforecast", "arch", "numpy"},
        "partitioned": True,
    },
    "forecasts/accuracy": {
        "deps": {"forecasts/predictions", "features/targets"},
        "group": "forecasts",
        "kinds": {"duckdb", "polars"},
        "partitioned": False,
    },
    "ml/model": {
        "deps": {"features/daily", "features/targets"},
        "group": "ml",
        "kinds": {"duckdb", "lightgbm", "scikit-learn"},
        "partitioned": False,
    },
    "ml/predictions": {
        "deps": {"ml/model", "features/daily"},
        "group": "ml",
        "kinds": {"duckdb", "lightgbm", "polars"},
        "partitioned": True,
    },
    "signals/daily": {
        "deps": {"forecasts/predictions", "ml/predictions", "features/targets"},
        "group": "signals",
        "kinds": {"duckdb", "polars"},
        "partitioned": True,
    },
    "backtest/run": {
        "deps": {"portfolio/allocations", "market/ohlcv"},
        "group": "backtest",
        "kinds": {"duckdb", "numpy"},
        "partitioned": False,
    },
    "portfolio/allocations": {
        "deps": {"signals/daily", "market/ohlcv", "features/targets"},
        "group": "portfolio",
        "kinds": {"duckdb", "skfolio"},
        "partitioned": True,
    },
    "monitoring/model_health": {
        "deps": {"forecasts/predictions", "ml/predictions", "features/targets"},
        "group": "monitoring",
        "kinds": {"duckdb", "polars"},
        "partitioned": True,
    },
    "monitoring/freshness": {
        "deps": {"market/ohlcv", "forecasts/predictions", "ml/predictions"},
        "group": "monitoring",
        "kinds": {"duckdb", "polars"},
        "partitioned": True,
    },
    "signals/scorecard": {
        "deps": {"signals/daily", "features/targets"},
        "group": "signals",
        "kinds": {"duckdb", "polars"},
        "partitioned": False,
    },
    "paper/account": {
        "deps": {"market/ohlcv", "portfolio/allocations"},
        "group": "paper",
        "kinds": {"duckdb", "numpy"},
        "partitioned": True,
    },
    "paper/orders": {
        "deps": {"paper/account", "portfolio/allocations"},
        "group": "paper",
        "kinds": {"duckdb", "numpy"},
        "partitioned": True,
    },
}


def _specs():
    graph = defs.resolve_asset_graph()
    return {key.to_user_string(): graph.get(key) for key in graph.get_all_asset_keys()}


def test_asset_graph_snapshot():
    specs = _specs()
    assert set(specs) == set(EXPECTED_SPECS)
    for key, node in specs.items():
        want = EXPECTED_SPECS[key]
        assert {d.to_user_string() for d in node.parent_keys} == want["deps"], key
        assert node.group_name == want["group"], key
        assert set(node.kinds) == want["kinds"], key
        assert (node.partitions_def is not None) == want["partitioned"], key
        assert node.owners, f"{key} has no owner"
        assert node.description, f"{key} has no docstring for the UI"


def test_every_asset_that_opens_duckdb_is_in_the_duckdb_pool():
    for asset_def in defs.assets:
        if "warehouse" in asset_def.required_resource_keys:
            assert asset_def.op.pool == DUCKDB_POOL, asset_def.key


def test_dagster_yaml_limits_the_duckdb_pool_to_one(tmp_path):
    config = yaml.safe_load((ROOT / "config" / "dagster.yaml").read_text())
    assert config["concurrency"]["pools"]["default_limit"] == 1
    (tmp_path / "dagster.yaml").write_text((ROOT / "config" / "dagster.yaml").read_text())
    with dg.instance_for_test(temp_dir=str(tmp_path), overrides=config) as instance:
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 1


def test_ohlcv_checks_block_on_data_errors_and_warn_on_quality():
    checks = {spec.name: spec for spec in defs.get_assets_def(dg.AssetKey(["market", "ohlcv"])).check_specs}
    assert {n for n, s in checks.items() if s.blocking} == {
        "ohlcv_schema",
        "ohlcv_duplicates",
        "ohlcv_price_consistency",
        "ohlcv_quarantine_rate",
    }
    assert {n for n, s in checks.items() if not s.blocking} == {
        "ohlcv_calendar_gaps",
        "ohlcv_jumps",
        "ohlcv_staleness",
        "ohlcv_volume",
        "ohlcv_restatements",
        "ohlcv_sources_available",  # fails with ERROR on an outage, and then nothing materializes
    }


def _tick(day: str) -> dg.ScheduleEvaluationContext:
    when = dt.datetime.fromisoformat(f"{day}T01:30:00").replace(tzinfo=dt.timezone(dt.timedelta(hours=-5)))
    return dg.build_schedule_context(scheduled_execution_time=when)


def test_nightly_schedule_runs_the_session_that_closed_and_skips_after_holidays():
    run = nightly_schedule(_tick("2019-01-03"))  # Wednesday night's session: 2019-01-02
    assert isinstance(run, dg.RunRequest) and run.partition_key == "2019-01-02"
    skip = nightly_schedule(_tick("2018-12-26"))  # after Christmas Day
    assert isinstance(skip, dg.SkipReason) and "2018-12-25" in skip.skip_message


def _job_keys(name: str) -> set[str]:
    job = defs.resolve_job_def(name)
    return {k.to_user_string() for k in job.asset_layer.executable_asset_keys}


def test_jobs_select_their_assets():
    nightly = _job_keys("nightly_job")
    assert nightly == {k for k, v in EXPECTED_SPECS.items() if v["group"] not in ("ml", "fits")} | {
        "ml/predictions"
    }
    assert _job_keys("ml_training_job") == {"ml/model"}
    assert _job_keys("refit_job") == {"forecasts/fits"}


def test_partitioned_assets_of_the_nightly_job_share_one_backfill_policy():
    nightly = {dg.AssetKey.from_user_string(k) for k in _job_keys("nightly_job")}
    policies = {a.backfill_policy for a in defs.assets if a.partitions_def is not None and a.keys & nightly}
    assert len(policies) == 1 and next(iter(policies)).max_partitions_per_run == 126


def test_ml_training_runs_weekly_on_saturday_morning_and_starts_running():
    assert ml_training_schedule.cron_schedule == "0 6 * * 6"
    assert ml_training_schedule.execution_timezone == "America/New_York"
    assert ml_training_schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    assert ml_training_schedule.job_name == "ml_training_job"


def test_refit_runs_weekly_on_saturday_after_ml_training_and_starts_running():
    assert refit_schedule.cron_schedule == "0 7 * * 6"
    assert refit_schedule.execution_timezone == "America/New_York"
    assert refit_schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    assert refit_schedule.job_name == "refit_job"


def test_refit_job_takes_the_decay_sensors_run_config():
    config = {"ops": {"forecasts__fits": {"config": {"models": {"arima": ["AAPL"], "garch": []}}}}}
    job = defs.resolve_job_def("refit_job")
    assert job.run_config_schema.config_type is not None
    checked = process_config(job.run_config_schema.config_type, config)
    assert checked.success, checked.errors
    assert not process_config(
        job.run_config_schema.config_type, {"ops": {"forecasts__fits": {"config": {"models": ["arima"]}}}}
    ).success
