"""Refits of the stored statistical fits (``forecasts/fits``): weekly, and on request.

The nightly ``forecasts/predictions`` applies the stored fits with fixed estimates and fits only
what has no usable fit; this job re-estimates. The weekly schedule runs it with an empty config,
which refits every fit at least ``min_age`` sessions old (so every fit, once a week); the
accuracy-decay sensor runs it with ``{"ops": {"forecasts__fits": {"config": {"models":
{"arima": ["AAPL"]}}}}}`` to refit exactly the decayed models and tickers. Saturday 07:00 New York
time falls after Friday's bars are in (the nightly run at 01:30) and after the ML training (06:00).
It starts RUNNING when the daemon starts (stop it in the UI or with ``dagster schedule stop
refit_schedule``).
"""

import dagster as dg

from pm_assets.partitions import MARKET_TIMEZONE

refit_job = dg.define_asset_job(
    name="refit_job",
    selection=dg.AssetSelection.assets(dg.AssetKey(["forecasts", "fits"])),
    description="Refit the stored statistical fits: those due (weekly) or the models and tickers named in the run config.",
)

refit_schedule = dg.ScheduleDefinition(
    name="refit_schedule",
    job=refit_job,
    cron_schedule="0 7 * * 6",
    execution_timezone=MARKET_TIMEZONE,
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
