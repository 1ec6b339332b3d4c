"""A tiny job in the ``duckdb`` pool, run by our executor, and runs that hold the pool's slot."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import dagster as dg
from dagster._core.storage.dagster_run import DagsterRun, DagsterRunStatus

from pm_jobs import recovering_in_process_executor
from pm_jobs.pool import process_tags
from pm_resources import DUCKDB_POOL
from tests.conftest import shipped_dagster_home

ROOT = Path(__file__).resolve().parents[1]


@dg.asset(pool=DUCKDB_POOL)
def pooled_step() -> int:
    """Does nothing but needs the pool's one slot."""
    return 1


def pooled_job() -> dg.JobDefinition:
    defs = dg.Definitions(
        assets=[pooled_step],
        jobs=[dg.define_asset_job("pooled_job")],
        executor=recovering_in_process_executor,
    )
    return defs.resolve_job_def("pooled_job")


def instance_with_shipped_settings(home: Path) -> dg.DagsterInstance:
    return dg.DagsterInstance.from_config(str(shipped_dagster_home(home)))


def sleeper() -> subprocess.Popen:
    """A process that lives until killed (stands in for a run's process)."""
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])


def holding_run(instance: dg.DagsterInstance, pid: int, *, step: str = "market__ohlcv") -> str:
    """A STARTED run of process ``pid`` that holds the pool's slot for ``step``."""
    run_id = str(uuid.uuid4())
    instance.add_run(
        DagsterRun(
            job_name="nightly_job", run_id=run_id, status=DagsterRunStatus.STARTED, tags=process_tags(pid)
        )
    )
    storage = instance.event_log_storage
    storage.initialize_concurrency_limit_to_default(DUCKDB_POOL)
    assert storage.claim_concurrency_slot(DUCKDB_POOL, run_id, step, 0).is_claimed
    return run_id
