"""Schedules and sensors: what starts with the daemon, and which session the nightly run asks for."""

import datetime as dt
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from model_code.market_data.calendar import trading_calendar
from pm_assets.partitions import trading_days
from pm_definitions.definitions import defs
from pm_jobs.nightly import nightly_schedule

NEW_YORK = ZoneInfo("America/New_York")


def _nightly(day: str) -> dg.RunRequest | dg.SkipReason:
    """The nightly schedule's tick at 01:30 New York time on ``day`` (DST-aware)."""
    when = dt.datetime.fromisoformat(f"{day}T01:30:00").replace(tzinfo=NEW_YORK)
    return nightly_schedule(dg.build_schedule_context(scheduled_execution_time=when))


@pytest.mark.parametrize(
    ("tick", "session"),
    [
        ("2019-01-03", "2019-01-02"),  # Thursday morning: Wednesday's session
        ("2019-01-05", "2019-01-04"),  # Saturday morning: Friday's session
        ("2019-07-02", "2019-07-01"),  # summer time
        ("2019-03-12", "2019-03-11"),  # the Monday after the clocks changed
    ],
)
def test_nightly_schedule_requests_the_session_that_closed(tick, session):
    run = _nightly(tick)
    assert isinstance(run, dg.RunRequest)
    assert run.partition_key == session and run.run_key == session


@pytest.mark.parametrize(
    ("tick", "holiday"),
    [
        ("2019-01-02", "2019-01-01"),  # New Year's Day
        ("2019-04-20", "2019-04-19"),  # Good Friday (a weekday the exchange is closed)
        ("2019-07-05", "2019-07-04"),  # Independence Day
        ("2019-11-29", "2019-11-28"),  # Thanksgiving
        ("2018-12-06", "2018-12-05"),  # the national day of mourning (G. H. W. Bush)
    ],
)
def test_nightly_schedule_skips_nyse_holidays(tick, holiday):
    skip = _nightly(tick)
    assert isinstance(skip, dg.SkipReason) and holiday in skip.skip_message


def test_every_schedule_and_sensor_starts_running_with_the_daemon():
    schedules = {s.name: s for s in defs.schedules}
    assert {"nightly_schedule", "ml_training_schedule"} <= set(schedules)
    assert all(s.default_status == dg.DefaultScheduleStatus.RUNNING for s in schedules.values())
    sensors = {s.name: s for s in defs.sensors}
    assert set(sensors) == {"accuracy_decay_sensor", "run_failure_alert_sensor"}
    assert all(s.default_status == dg.DefaultSensorStatus.RUNNING for s in sensors.values())
    assert {j.name for j in sensors["accuracy_decay_sensor"].jobs} == {"ml_training_job", "refit_job"}


def test_nightly_job_monitors_after_forecasting():
    job = defs.resolve_job_def("nightly_job")
    keys = {k.to_user_string() for k in job.asset_layer.executable_asset_keys}
    assert {"monitoring/model_health", "monitoring/freshness"} <= keys
    graph = defs.resolve_asset_graph()
    health = graph.get(dg.AssetKey(["monitoring", "model_health"]))
    assert {dg.AssetKey(["forecasts", "predictions"]), dg.AssetKey(["ml", "predictions"])} <= set(
        health.parent_keys
    )
    checks = {k.name for k in job.asset_layer.asset_graph.asset_check_keys if k.asset_key == health.key}
    assert checks == {"statistical_models_decay", "ml_models_decay"}


def test_the_alerts_resource_is_registered():
    assert "alerts" in defs.resources


def test_nightly_schedule_skips_sessions_outside_the_configured_history():
    # the day after the partitions' last session (the tests' PM_HISTORY_END, see conftest)
    last = dt.date.fromisoformat(trading_days.get_last_partition_key())
    after = trading_calendar().sessions_in_range(last + dt.timedelta(days=1), last + dt.timedelta(days=10))[0]
    skip = _nightly((after + dt.timedelta(days=1)).isoformat())
    assert isinstance(skip, dg.SkipReason) and "outside the configured history" in skip.skip_message
