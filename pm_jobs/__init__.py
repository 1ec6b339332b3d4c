"""Jobs, schedules, and the executor every job runs with."""

from pm_jobs.executor import recovering_in_process_executor
from pm_jobs.ml_training import ml_training_job, ml_training_schedule
from pm_jobs.nightly import nightly_job, nightly_schedule
from pm_jobs.refit import refit_job, refit_schedule

__all__ = [
    "ml_training_job",
    "ml_training_schedule",
    "nightly_job",
    "nightly_schedule",
    "recovering_in_process_executor",
    "refit_job",
    "refit_schedule",
]
