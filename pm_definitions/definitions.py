"""Assembles the Dagster ``Definitions``; no logic lives here."""

import dagster as dg

from pm_assets.backtest import backtest_assets
from pm_assets.features import feature_assets
from pm_assets.forecasts import forecast_assets
from pm_assets.market import market_assets
from pm_assets.ml import ml_assets
from pm_assets.monitoring import monitoring_assets
from pm_assets.paper import paper_assets
from pm_assets.portfolio import portfolio_assets
from pm_assets.signals import signal_assets
from pm_jobs import (
    ml_training_job,
    ml_training_schedule,
    nightly_job,
    nightly_schedule,
    recovering_in_process_executor,
    refit_job,
    refit_schedule,
)
from pm_resources import build_resources
from pm_sensors import all_sensors

defs = dg.Definitions(
    assets=[
        *market_assets,
        *feature_assets,
        *forecast_assets,
        *ml_assets,
        *signal_assets,
        *portfolio_assets,
        *backtest_assets,
        *paper_assets,
        *monitoring_assets,
    ],
    jobs=[nightly_job, ml_training_job, refit_job],
    schedules=[nightly_schedule, ml_training_schedule, refit_schedule],
    sensors=all_sensors,
    resources=build_resources(),
    executor=recovering_in_process_executor,
)
