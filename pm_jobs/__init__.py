"""Jobs and schedules."""

from pm_jobs.nightly import nightly_job, nightly_schedule

__all__ = ["nightly_job", "nightly_schedule"]
