"""The executor every job runs with: Dagster's in-process executor, made safe around the pool.

Steps run one after another in the run's process (per-ticker work is parallel inside a step,
and the ``duckdb`` pool admits one step at a time anyway). Compared with Dagster's own
in-process executor, a run

- records its process in its tags and, before claiming a pool slot and every few seconds while
  it waits for one, frees the slots of runs whose process is gone (:func:`pm_jobs.pool.recover`);
- waits by sleeping (Dagster's in-process wait loop spins a core) and honours Ctrl-C / SIGTERM
  within a second while it waits;
- gives up after ``pool_wait_seconds`` (default 900, ``PM_POOL_WAIT_SECONDS``) with an error
  naming the run that holds the slot and the command that frees it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import dagster as dg
from dagster._core.errors import DagsterExecutionInterruptedError
from dagster._core.execution.api import ExecuteRunWithPlanIterable
from dagster._core.execution.context.system import PlanExecutionContext, PlanOrchestrationContext
from dagster._core.execution.context_creation_job import PlanExecutionContextManager
from dagster._core.execution.plan.execute_plan import inner_plan_execution_iterator
from dagster._core.execution.plan.instance_concurrency_context import InstanceConcurrencyContext
from dagster._core.execution.plan.plan import ExecutionPlan
from dagster._core.execution.retries import RetryMode, get_retries_config
from dagster._core.executor.base import Executor
from dagster._utils.interrupts import pop_captured_interrupt

from pm_jobs.pool import FREE_COMMAND, holders, process_tags, recover

DEFAULT_POOL_WAIT_SECONDS = 900.0
RECOVER_EVERY_SECONDS = 5.0
POLL_SECONDS = 1.0


class PoolWaitTimeout(dg.DagsterError):
    """A step waited longer than ``pool_wait_seconds`` for a pool slot held by another run."""


class _RecoveringConcurrency(InstanceConcurrencyContext):
    """Claims pool slots like Dagster's context, but recovers dead holders, sleeps, and gives up."""

    def __init__(self, instance: dg.DagsterInstance, run, *, max_wait: float) -> None:
        super().__init__(instance, run)
        self._max_wait = max_wait
        self._waiting_since: dict[str, float] = {}
        self._last_recovery: dict[str, float] = {}

    def claim(self, concurrency_key: str, step_key: str, step_priority: int = 0) -> bool:
        if pop_captured_interrupt():
            raise DagsterExecutionInterruptedError(f"interrupted while {step_key} waited for a pool slot")
        now = time.monotonic()
        if now - self._last_recovery.get(concurrency_key, -1e9) >= RECOVER_EVERY_SECONDS:
            self._last_recovery[concurrency_key] = now
            recover(self._instance, concurrency_key, exclude=self._run_id)
        if super().claim(concurrency_key, step_key, step_priority):
            self._waiting_since.pop(step_key, None)
            return True
        waited = now - self._waiting_since.setdefault(step_key, now)
        if waited > self._max_wait:
            others = [h for h in holders(self._instance, concurrency_key) if h.run_id != self._run_id]
            held_by = (
                "; ".join(h.describe() for h in others if h.claimed) or "no run (it was freed meanwhile)"
            )
            commands = " or ".join(FREE_COMMAND.format(run_id=h.run_id) for h in others if h.claimed)
            raise PoolWaitTimeout(
                f"step {step_key} waited {waited:.0f} s for a slot of the '{concurrency_key}' pool "
                f"(limit pool_wait_seconds={self._max_wait:.0f}). Held by: {held_by}. If that run "
                f"is stuck, free its slot with: {commands or 'python -m pm_jobs.pool_admin status'} "
                "(or in the UI: Deployment > Concurrency)."
            )
        return False

    def interval_to_next_pending_claim_check(self) -> float:
        # Dagster's version returns min(0, ...) and so never sleeps; poll at most each second so a
        # Ctrl-C is honoured promptly.
        if not self.has_pending_claims():
            return 0.0
        now = time.time()
        due = min((at - now for at in self._pending_timeouts.values()), default=0.0)
        return min(POLL_SECONDS, max(0.05, due))


class RecoveringInProcessExecutor(Executor):
    """Dagster's in-process execution with :class:`_RecoveringConcurrency` for pool slots."""

    def __init__(self, retries: RetryMode, pool_wait_seconds: float) -> None:
        self._retries = retries
        self._max_wait = pool_wait_seconds

    @property
    def retries(self) -> RetryMode:
        return self._retries

    def execute(
        self, plan_context: PlanOrchestrationContext, execution_plan: ExecutionPlan
    ) -> Iterator[dg.DagsterEvent]:
        instance, run = plan_context.instance, plan_context.dagster_run
        if not instance.is_ephemeral:
            instance.add_run_tags(run.run_id, process_tags())
        max_wait = self._max_wait

        def iterate(
            job_context: PlanExecutionContext, execution_plan: ExecutionPlan
        ) -> Iterator[dg.DagsterEvent]:
            with _RecoveringConcurrency(
                job_context.instance, job_context.dagster_run, max_wait=max_wait
            ) as ctx:
                yield from inner_plan_execution_iterator(job_context, execution_plan, ctx)

        yield from iter(
            ExecuteRunWithPlanIterable(
                execution_plan=plan_context.execution_plan,
                iterator=iterate,
                execution_context_manager=PlanExecutionContextManager(
                    job=plan_context.job,
                    retry_mode=plan_context.retry_mode,
                    execution_plan=plan_context.execution_plan,
                    run_config=plan_context.run_config,
                    dagster_run=run,
                    instance=instance,
                    raise_on_error=plan_context.raise_on_error,
                    output_capture=plan_context.output_capture,
                ),
            )
        )


@dg.executor(
    name="in_process_recovering",
    config_schema={
        "retries": get_retries_config(),
        "pool_wait_seconds": dg.Field(
            float,
            is_required=False,
            description="Seconds a step waits for a pool slot held by a live run before failing.",
        ),
    },
)
def recovering_in_process_executor(init_context) -> RecoveringInProcessExecutor:
    """In-process execution that frees dead runs' pool slots and never waits unboundedly."""
    config = init_context.executor_config
    default = float(os.environ.get("PM_POOL_WAIT_SECONDS") or DEFAULT_POOL_WAIT_SECONDS)
    return RecoveringInProcessExecutor(
        retries=RetryMode.from_config(config["retries"]),  # type: ignore[arg-type]
        pool_wait_seconds=float(config.get("pool_wait_seconds") or default),
    )
