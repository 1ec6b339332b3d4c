"""The nightly batch: ingest and validate the last session's bars, build features and targets,
forecast and score the champion ML models, route signals and score the past ones, size
target weights under the risk limits and backtest them beside their baselines (later: paper
trades), then monitor every forecaster's rolling accuracy, the bars' freshness and the fits'
age (``monitoring`` group, after the forecasts it judges), on trading days only. The ML models
themselves are trained weekly (``pm_jobs.ml_training``).

The schedule fires at 01:30 New York time, Tuesday to Saturday, and asks for the partition of
the previous calendar day when that day was an NYSE session; on the night after a holiday it
skips with a reason. Vendors publish end-of-day bars by ~20:00 ET, so 01:30 leaves margin.
It starts RUNNING when the daemon starts (stop it in the UI or with ``dagster schedule stop
nightly_schedule``).
"""

import datetime as dt

import dagster as dg

from model_code.market_data.calendar import trading_calendar
from pm_assets.partitions import MARKET_TIMEZONE, trading_days

nightly_job = dg.define_asset_job(
    name="nightly_job",
    selection=dg.AssetSelection.groups(
        "market", "features", "forecasts", "signals", "portfolio", "backtest", "paper", "monitoring"
    )
    | dg.AssetSelection.assets(dg.AssetKey(["ml", "predictions"])),
    description=(
        "Ingest and validate daily bars, build features and targets, forecast with the statistical "
        "and the champion ML models, route one signal per ticker, score past signals and size the "
        "target weights under the risk limits and backtest them beside their baselines, and monitor "
        "every forecaster's rolling accuracy, the bars' freshness and the fits' age (the platform's "
        "main job)."
    ),
)


@dg.schedule(
    job=nightly_job,
    cron_schedule="30 1 * * 2-6",
    execution_timezone=MARKET_TIMEZONE,
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
def nightly_schedule(context: dg.ScheduleEvaluationContext):
    """Run the nightly job for the session that closed yesterday (skip after non-sessions)."""
    tick = context.scheduled_execution_time
    session = (tick - dt.timedelta(days=1)).date() if tick else None
    if session is None or not trading_calendar().is_session(session):
        return dg.SkipReason(f"{session} was not an NYSE session")
    key = session.isoformat()
    if not trading_days.has_partition_key(key):
        return dg.SkipReason(
            f"{key} is outside the configured history (PM_HISTORY_START..PM_HISTORY_END; the bundled "
            "data alone ends at its last bar)"
        )
    return dg.RunRequest(run_key=key, partition_key=key)
