"""A run that died never jams the ``duckdb`` pool; a live holder is waited for, boundedly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import dagster as dg
import pytest
from dagster._core.storage.dagster_run import DagsterRunStatus

from pm_jobs.pool import holders, process_started, process_tags, recover
from tests.pool_cases import ROOT, holding_run, instance_with_shipped_settings, pooled_job, sleeper


@pytest.fixture
def instance(tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    with instance_with_shipped_settings(tmp_path / "dagster_home") as inst:
        yield inst


def _dead_pid() -> int:
    proc = sleeper()
    proc.kill()
    proc.wait()
    return proc.pid


def test_process_identity_tells_a_reused_pid_from_the_original():
    me = process_tags()
    assert me["pm/pid"] == str(os.getpid()) and me["pm/process_started"] == process_started(os.getpid())
    assert process_started(_dead_pid()) is None


def test_recover_frees_dead_runs_and_marks_them_failed_but_keeps_live_ones(instance):
    live = sleeper()
    try:
        dead_run = holding_run(instance, _dead_pid())
        found = {h.run_id: h for h in holders(instance)}
        assert found[dead_run].dead and found[dead_run].claimed and found[dead_run].alive is False
        freed = recover(instance)
        assert [h.run_id for h in freed] == [dead_run]
        assert instance.get_run_by_id(dead_run).status == DagsterRunStatus.FAILURE
        assert holders(instance) == []

        live_run = holding_run(instance, live.pid)
        assert recover(instance) == [] and holders(instance)[0].alive is True
        # The same PID with another start time is another process: the run's own is gone.
        instance.add_run_tags(live_run, {"pm/process_started": "1"})
        assert [h.run_id for h in recover(instance)] == [live_run]
    finally:
        live.kill()
        live.wait()


def test_a_run_after_a_killed_one_claims_the_freed_slot_and_completes(instance):
    dead_run = holding_run(instance, _dead_pid())
    began = time.monotonic()
    result = dg.execute_job(dg.reconstructable(pooled_job), instance=instance)
    assert result.success and time.monotonic() - began < 60
    assert instance.get_run_by_id(dead_run).status == DagsterRunStatus.FAILURE
    assert holders(instance) == []
    assert instance.get_run_by_id(result.run_id).tags["pm/pid"] == str(os.getpid())


def test_a_live_holder_is_waited_for_boundedly_with_the_run_and_command_named(instance):
    live = sleeper()
    try:
        live_run = holding_run(instance, live.pid, step="forecasts__predictions")
        began = time.monotonic()
        result = dg.execute_job(
            dg.reconstructable(pooled_job),
            instance=instance,
            run_config={"execution": {"config": {"pool_wait_seconds": 2.0}}},
            raise_on_error=False,
        )
        waited = time.monotonic() - began
    finally:
        live.kill()
        live.wait()
    assert not result.success and 2.0 <= waited < 30
    failure = instance.get_run_by_id(result.run_id)
    assert failure.status == DagsterRunStatus.FAILURE
    [event] = instance.all_logs(result.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
    error = event.dagster_event.event_specific_data.error
    text = error.message
    assert error.cls_name == "PoolWaitTimeout" and "step pooled_step waited" in text
    assert live_run in text and f"python -m pm_jobs.pool_admin free {live_run}" in text
    assert "forecasts__predictions" in text


_WAITER = """
import sys, dagster as dg
from tests.pool_cases import pooled_job
instance = dg.DagsterInstance.get()
print("waiting", flush=True)
dg.execute_job(dg.reconstructable(pooled_job), instance=instance, raise_on_error=False)
"""


def test_a_waiting_run_honours_ctrl_c_promptly(instance, tmp_path):
    live = sleeper()
    try:
        holding_run(instance, live.pid)
        proc = subprocess.Popen(
            [sys.executable, "-c", _WAITER],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout.readline().strip() == "waiting"
        time.sleep(4.0)  # inside the wait for the slot
        assert proc.poll() is None, "the run did not wait for the held slot"
        proc.send_signal(signal.SIGINT)
        began = time.monotonic()
        proc.wait(timeout=30)
        assert time.monotonic() - began < 10
    finally:
        live.kill()
        live.wait()
        if proc.poll() is None:
            proc.kill()
    assert [h.run_id for h in holders(instance) if h.claimed] != []  # the live holder kept its slot
    assert all(h.claimed for h in holders(instance))  # the interrupted run left no pending claim


def test_the_admin_command_lists_a_dead_holder_and_frees_it(instance):
    dead_run = holding_run(instance, _dead_pid())
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def admin(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "pm_jobs.pool_admin", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    status = admin("status")
    assert (
        f"DEAD  run {dead_run} (nightly_job, STARTED" in status
        and "holds the slot for step market__ohlcv" in status
    )
    assert f"freed the slots of run {dead_run}" in admin("free", dead_run)
    assert holders(instance) == [] and "0 run(s)" in admin("status")
