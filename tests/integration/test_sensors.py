"""The sensors on a real DagsterInstance with real events: accuracy decay and run failure.

The decay sensor reads ``monitoring/model_health`` materializations (materialized here over a
seeded DuckDB, or reported as runless events for bursts) after its storage-id cursor; the
failure sensor gets a real failed run and sends it to a JSON-lines file and a local webhook.
"""

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import dagster as dg
import pytest

from pm_assets.monitoring.model_health import MODEL_HEALTH, model_health
from pm_definitions.definitions import defs
from pm_jobs import ml_training_job, refit_job
from pm_resources import AlertsResource
from pm_sensors import accuracy_decay, build_accuracy_decay_sensor, run_failure_alert_sensor
from tests.integration.test_monitoring_assets import SESSIONS, materialize, seed

SENSOR = build_accuracy_decay_sensor(ml_job=ml_training_job, refit_job=refit_job)


def tick(instance, cursor=None):
    return SENSOR.evaluate_tick(dg.build_sensor_context(instance=instance, cursor=cursor))


def report(instance, request, as_of="2019-06-27", partition="2019-06-27"):
    instance.report_runless_asset_event(
        dg.AssetMaterialization(
            asset_key=MODEL_HEALTH,
            partition=partition,
            metadata={"as_of": as_of, "refit_request": dg.MetadataValue.json(request)},
        )
    )


def assert_valid_for_its_job(request: dg.RunRequest):
    job = defs.resolve_job_def(request.job_name)
    assert dg.validate_run_config(job, request.run_config)


def test_a_decayed_model_asks_for_one_refit_of_exactly_its_models_and_tickers(tmp_path):
    db = tmp_path / "wh.duckdb"
    seed(db, rules={("arima", "AAA"): -1.0, ("arima", "BBB"): 0.5, ("garch", "AAA"): 0.5})
    with dg.instance_for_test() as instance:
        materialize(db, SESSIONS[-2].isoformat(), instance=instance, assets=[model_health])
        first = tick(instance)
        [request] = first.run_requests
        assert request.job_name == "refit_job"
        assert request.run_config == {"ops": {"forecasts__fits": {"config": {"models": {"arima": ["AAA"]}}}}}
        assert request.tags["pm/decay_as_of"] == SESSIONS[-2].isoformat()
        assert_valid_for_its_job(request)
        # The same evaluation again: nothing new after the cursor, no request.
        again = tick(instance, first.cursor)
        assert again.run_requests == [] and again.cursor in (None, first.cursor)
        # A tick whose cursor was lost asks for the same run key, which Dagster launches once.
        assert [r.run_key for r in tick(instance).run_requests] == [request.run_key]


def test_a_healthy_model_asks_for_nothing(tmp_path):
    db = tmp_path / "wh.duckdb"
    seed(db, rules={("arima", "AAA"): 0.5, ("arima", "BBB"): 0.5})
    with dg.instance_for_test() as instance:
        materialize(db, SESSIONS[-2].isoformat(), instance=instance, assets=[model_health])
        result = tick(instance)
        assert result.run_requests == [] and result.cursor is not None  # seen, moved past
        assert "no model crossed" in result.skip_message


def test_twenty_evaluations_in_one_burst_are_all_seen(monkeypatch):
    monkeypatch.setattr(accuracy_decay, "PAGE", 7)  # the burst spans three pages
    with dg.instance_for_test() as instance:
        report(instance, {})  # handled before the burst
        start = tick(instance)
        assert start.run_requests == []
        for i in range(20):
            day = SESSIONS[i].isoformat()
            report(instance, {"statistical": {"arima": [f"T{i:02d}"]}}, as_of=day, partition=day)
        burst = tick(instance, start.cursor)
        tickers = [
            r.run_config["ops"]["forecasts__fits"]["config"]["models"]["arima"] for r in burst.run_requests
        ]
        assert tickers == [[f"T{i:02d}"] for i in range(20)]
        assert len({r.run_key for r in burst.run_requests}) == 20
        assert tick(instance, burst.cursor).run_requests == []


def test_ml_decay_trains_the_decayed_horizons_and_range_partitions_speak_once():
    with dg.instance_for_test() as instance:
        request = {"ml": {"lgbm": [21, 5]}, "statistical": {"garch": ["B", "A"]}}
        # A range run stores one materialization per partition, each with the range's metadata.
        for day in ("2019-06-25", "2019-06-26", "2019-06-27"):
            report(instance, request, as_of="2019-06-27", partition=day)
        result = tick(instance)
        by_job = {r.job_name: r for r in result.run_requests}
        assert len(result.run_requests) == 2 and set(by_job) == {"refit_job", "ml_training_job"}
        ml = by_job["ml_training_job"].run_config["ops"]["ml__model"]["config"]
        assert ml == {"family": "lgbm_regressor", "horizons": [5, 21]}
        assert by_job["refit_job"].run_config["ops"]["forecasts__fits"]["config"]["models"] == {
            "garch": ["A", "B"]
        }
        for r in result.run_requests:
            assert_valid_for_its_job(r)


def test_without_a_refit_job_statistical_decay_asks_for_nothing():
    sensor = build_accuracy_decay_sensor(ml_job=ml_training_job, refit_job=None, name="ml_only")
    with dg.instance_for_test() as instance:
        report(instance, {"statistical": {"arima": ["A"]}})
        result = sensor.evaluate_tick(dg.build_sensor_context(instance=instance))
        assert result.run_requests == [] and result.cursor is not None


class _Hook(BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def webhook():
    _Hook.received = []
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/alerts", _Hook.received
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@dg.op
def broken_step():
    raise ValueError("the vendor returned nothing")


@dg.job
def failing_job():
    broken_step()


def _failure_context(instance, alerts):
    result = failing_job.execute_in_process(instance=instance, raise_on_error=False)
    assert not result.success
    return dg.build_run_status_sensor_context(
        sensor_name="run_failure_alert_sensor",
        dagster_event=result.get_run_failure_event(),
        dagster_instance=instance,
        dagster_run=result.dagster_run,
        resources={"alerts": alerts},
    ).for_run_failure(), result.run_id


def test_a_failed_run_is_written_to_the_alerts_file_and_posted_to_the_webhook(tmp_path, webhook):
    url, received = webhook
    alerts = AlertsResource(alerts_dir=str(tmp_path / "alerts"), webhook_url=url, timeout_seconds=5)
    with dg.instance_for_test() as instance:
        context, run_id = _failure_context(instance, alerts)
        run_failure_alert_sensor(context)
    [line] = (tmp_path / "alerts" / "alerts.jsonl").read_text().splitlines()
    alert = json.loads(line)
    assert (alert["kind"], alert["job_name"], alert["run_id"]) == ("run_failure", "failing_job", run_id)
    [step] = alert["failed_steps"]
    assert step["step"] == "broken_step" and "the vendor returned nothing" in step["error"]
    assert received == [alert]


def test_a_webhook_that_is_down_is_logged_not_raised_and_the_file_still_gets_the_alert(tmp_path, webhook):
    url, received = webhook
    down = url.rsplit(":", 1)[0] + ":9/alerts"  # the discard port: nothing listens
    alerts = AlertsResource(alerts_dir=str(tmp_path / "alerts"), webhook_url=down, timeout_seconds=2)
    assert alerts.send({"kind": "test"}) is False
    assert json.loads((tmp_path / "alerts" / "alerts.jsonl").read_text())["kind"] == "test"
    assert received == []
    # Without a webhook only the file is written.
    assert AlertsResource(alerts_dir=str(tmp_path / "alerts")).send({"kind": "file only"}) is False
    assert len((tmp_path / "alerts" / "alerts.jsonl").read_text().splitlines()) == 2
