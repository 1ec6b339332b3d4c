"""Sensors: they read asset events, check results and run status, never DuckDB.

- ``accuracy_decay_sensor``: refits exactly the decayed models and tickers (ML: horizons) named
  by ``monitoring/model_health`` (:mod:`pm_sensors.accuracy_decay`).
- ``run_failure_alert_sensor``: every failed run becomes an alert (:mod:`pm_sensors.run_failure`).

Both start RUNNING when the daemon starts.
"""

from pm_jobs import ml_training_job, refit_job
from pm_sensors.accuracy_decay import build_accuracy_decay_sensor
from pm_sensors.refit_requests import ml_training_run_config, refit_run_config
from pm_sensors.run_failure import run_failure_alert_sensor

accuracy_decay_sensor = build_accuracy_decay_sensor(ml_job=ml_training_job, refit_job=refit_job)

all_sensors: list = [accuracy_decay_sensor, run_failure_alert_sensor]

__all__ = [
    "accuracy_decay_sensor",
    "all_sensors",
    "build_accuracy_decay_sensor",
    "ml_training_run_config",
    "refit_run_config",
    "run_failure_alert_sensor",
]
