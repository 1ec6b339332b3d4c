"""The ``duckdb`` pool never stays jammed by a run that died.

A step holds a slot of the ``duckdb`` pool (limit 1) while it runs. A run killed by SIGKILL, the
OOM killer or a lost machine never frees it, and every later run waits for it forever. Two
mechanisms free such slots:

- under the daemon, Dagster's run monitoring (``run_monitoring.free_slots_after_run_end_seconds``
  in the shipped ``dagster.yaml``) frees the slots of runs that ended;
- every run of our executor (:mod:`pm_jobs.executor`) and every ``make demo`` run records its
  process (host, PID, process start time) in run tags, and before claiming, and while it waits
  for a slot, :func:`recover` frees the slots of runs whose process is gone, marking them failed.

``python -m pm_jobs.pool_admin [status|recover|free RUN_ID]`` shows the holders, runs the same
recovery, or frees one run's slots by hand.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
from dagster._core.storage.dagster_run import FINISHED_STATUSES

from pm_resources import DUCKDB_POOL

HOST_TAG = "pm/host"
PID_TAG = "pm/pid"
STARTED_TAG = "pm/process_started"
FREE_COMMAND = "python -m pm_jobs.pool_admin free {run_id}"


def process_started(pid: int) -> str | None:
    """The kernel's start time of process ``pid`` (clock ticks since boot), or None if none runs.

    Together with the PID it identifies a process: a PID reused by a later process has
    another start time.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) is parenthesised and may contain spaces
    return stat.rsplit(")", 1)[1].split()[19]


def process_tags(pid: int | None = None) -> dict[str, str]:
    """Run tags that identify the process executing a run (this one by default)."""
    pid = pid or os.getpid()
    return {HOST_TAG: socket.gethostname(), PID_TAG: str(pid), STARTED_TAG: process_started(pid) or "?"}


@dataclass(frozen=True)
class SlotHolder:
    """A run that holds (or waits for) slots of a pool, and whether its process still runs."""

    run_id: str
    job_name: str
    status: str
    steps: tuple[str, ...]
    claimed: bool
    pid: int | None
    alive: bool | None  # None: unknown (no process tags, or another host)

    @property
    def dead(self) -> bool:
        """The run will never free its slots: it ended (an in-process run frees its slots as each
        step ends, so an ended run still holding one leaked it), or its process is gone."""
        return self.alive is False or self.status in {s.value for s in FINISHED_STATUSES}

    def describe(self) -> str:
        where = f"pid {self.pid}" if self.pid else "no recorded process"
        life = {True: "alive", False: "gone", None: "state unknown"}[self.alive]
        what = "holds" if self.claimed else "waits for"
        return (
            f"run {self.run_id} ({self.job_name}, {self.status}, {where} {life}) {what} the slot "
            f"for step {', '.join(self.steps)}"
        )


def _alive(tags: Mapping[str, str]) -> tuple[int | None, bool | None]:
    if PID_TAG not in tags:
        return None, None
    pid = int(tags[PID_TAG])
    if tags.get(HOST_TAG) != socket.gethostname():
        return pid, None
    started = process_started(pid)
    return pid, started is not None and started == tags.get(STARTED_TAG)


def holders(instance: dg.DagsterInstance, pool: str = DUCKDB_POOL) -> list[SlotHolder]:
    """Every run that holds or waits for a slot of ``pool``."""
    info = instance.event_log_storage.get_concurrency_info(pool)
    steps: dict[str, list[str]] = {}
    claimed: set[str] = set()
    for slot in info.claimed_slots:
        steps.setdefault(slot.run_id, []).append(slot.step_key)
        claimed.add(slot.run_id)
    for pending in info.pending_steps:
        if pending.step_key not in steps.setdefault(pending.run_id, []):
            steps[pending.run_id].append(pending.step_key)
    out = []
    for run_id, keys in steps.items():
        run = instance.get_run_by_id(run_id)
        tags = run.tags if run else {}
        pid, alive = _alive(tags)
        out.append(
            SlotHolder(
                run_id=run_id,
                job_name=run.job_name if run else "?",
                status=run.status.value if run else "DELETED",
                steps=tuple(keys),
                claimed=run_id in claimed,
                pid=pid,
                alive=False if run is None else alive,
            )
        )
    return out


def recover(
    instance: dg.DagsterInstance,
    pool: str = DUCKDB_POOL,
    *,
    exclude: str | None = None,
    log: Callable[[str], None] | None = None,
) -> list[SlotHolder]:
    """Free the slots of every dead holder of ``pool`` (not ``exclude``); returns them.

    A dead run that is not finished yet (its process was killed) is first marked failed, so
    the UI tells the truth about it.
    """
    freed = []
    for holder in holders(instance, pool):
        if holder.run_id == exclude or not holder.dead:
            continue
        run = instance.get_run_by_id(holder.run_id)
        if run is not None and not run.is_finished:
            instance.report_run_failed(
                run,
                f"the process of this run (pid {holder.pid}) is gone; pm_jobs.pool marked it failed "
                f"and freed its '{pool}' pool slots",
            )
        instance.event_log_storage.free_concurrency_slots_for_run(holder.run_id)
        freed.append(holder)
        if log:
            log(f"freed the '{pool}' pool slots of dead {holder.describe()}")
    return freed
