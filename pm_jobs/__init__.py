"""Jobs and schedules."""

from pm_jobs.ml_training import ml_training_job, ml_training_schedule
from pm_jobs.nightly import nightly_job, nightly_schedule

__all__ = ["ml_training_job", "ml_training_schedule", "nightly_job", "nightly_schedule"]
