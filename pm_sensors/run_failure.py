"""Run-failure sensor: every failed run becomes an alert (:class:`pm_resources.AlertsResource`)."""

from typing import Any

import dagster as dg

from pm_resources.alerts import AlertsResource


def _root_error(error) -> str | None:
    """The innermost cause of a step error (Dagster wraps the user's exception)."""
    if error is None:
        return None
    while error.cause is not None:
        error = error.cause
    return error.message.strip()


def failure_alert(context: dg.RunFailureSensorContext) -> dict[str, Any]:
    """The alert of one failed run: its job, id, partition, the failure and each failed step."""
    run = context.dagster_run
    steps = [
        {"step": e.step_key, "error": _root_error(e.step_failure_data.error)}
        for e in context.get_step_failure_events()
    ]
    return {
        "kind": "run_failure",
        "job_name": run.job_name,
        "run_id": run.run_id,
        "partition": run.tags.get("dagster/partition"),
        "message": context.failure_event.message,
        "failed_steps": steps,
    }


@dg.run_failure_sensor(
    name="run_failure_alert_sensor",
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Sends every failed run to the alerts resource (JSON lines under $PM_HOME/alerts, webhook).",
)
def run_failure_alert_sensor(context: dg.RunFailureSensorContext, alerts: AlertsResource) -> None:
    alert = failure_alert(context)
    posted = alerts.send(alert)
    context.log.info(
        "alert for failed run %s of %s (webhook: %s)", alert["run_id"], alert["job_name"], posted
    )
