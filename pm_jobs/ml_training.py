"""Weekly ML training: retrain the return forecasters over the weekend.

``ml_model`` trains, registers and maybe promotes one model per horizon; the nightly job then
scores the champions (``ml/predictions``). Saturday 06:00 New York time falls after Friday's
bars are in (the nightly run at 01:30) and leaves a week inside the default 30-day expiry.
The schedule starts RUNNING when the daemon starts (``dagster schedule stop ml_training_schedule``).

The weekly statistical refit is ``refit_schedule`` (``pm_jobs/refit.py``), an hour later.
"""

import dagster as dg

from pm_assets.partitions import MARKET_TIMEZONE

ml_training_job = dg.define_asset_job(
    name="ml_training_job",
    selection=dg.AssetSelection.assets(dg.AssetKey(["ml", "model"])),
    description="Train, register and promote the ML return forecasters (one per horizon).",
)

ml_training_schedule = dg.ScheduleDefinition(
    name="ml_training_schedule",
    job=ml_training_job,
    cron_schedule="0 6 * * 6",
    execution_timezone=MARKET_TIMEZONE,
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
