"""The nightly benchmark's step timing: per-step seconds read from a run's event log."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from benchmarks.nightly import (
    RunTimes,
    StepTime,
    cpu_mark,
    cpu_since,
    format_steps,
    run_events,
    step_times,
    verdict,
)


def test_step_times_pairs_each_start_with_its_end_in_start_order():
    events = [
        (None, "RUN_START", 100.0),
        ("b", "STEP_START", 103.0),
        ("a", "STEP_START", 100.5),
        ("a", "STEP_OUTPUT", 101.0),
        ("a", "STEP_SUCCESS", 102.5),
        ("b", "STEP_FAILURE", 104.25),
        ("c", "STEP_SKIPPED", 104.5),
        (None, "RUN_FAILURE", 105.0),
    ]
    times = step_times(events)
    assert times.steps == [
        StepTime("a", 2.0, "ok"),
        StepTime("b", 1.25, "FAILED"),
        StepTime("c", 0.0, "skipped"),
    ]
    assert times.run_seconds == 5.0 and times.created_seconds == 0.0
    assert times.step_seconds == 3.25
    planned = step_times([(None, "ASSET_MATERIALIZATION_PLANNED", 99.0), *events])
    assert planned.created_seconds == 1.0 and planned.run_seconds == 5.0


def test_a_retried_step_counts_every_attempt_and_an_unended_step_is_unfinished():
    events = [
        ("a", "STEP_START", 1.0),
        ("a", "STEP_UP_FOR_RETRY", 2.0),
        ("a", "STEP_START", 3.0),
        ("a", "STEP_SUCCESS", 4.5),
        ("z", "STEP_START", 5.0),
    ]
    times = step_times(events)
    assert times.steps == [StepTime("a", 3.5, "ok"), StepTime("z", 0.0, "unfinished")]
    assert times.run_seconds is None


def test_steps_of_a_real_run_are_timed_from_its_event_log():
    @dg.asset
    def slow() -> int:
        time.sleep(0.3)
        return 1

    @dg.asset
    def fast(slow: int) -> int:
        return slow + 1

    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize([slow, fast], instance=instance)
    assert result.success
    times = step_times(run_events(instance, result.run_id))
    assert [s.step for s in times.steps] == ["slow", "fast"]
    assert all(s.status == "ok" for s in times.steps)
    assert times.steps[0].seconds >= 0.3
    assert times.run_seconds is not None and times.run_seconds >= times.step_seconds
    assert times.created_seconds is not None and times.created_seconds >= 0.0


def test_the_table_and_the_verdict():
    steps = [StepTime("market__ohlcv", 3.0, "ok"), StepTime("paper__account", 1.0, "FAILED")]
    lines = format_steps(RunTimes(steps, 4.5, 0.25), wall=5.0)
    assert "60.0%" in lines[1] and "FAILED" in lines[2]
    # 4.5 s between RUN_START and the end, 4 s of it in steps; 0.25 s before RUN_START
    assert any(line.split()[-1] == "0.50" and "between steps" in line for line in lines)
    assert any(line.split()[-1] == "0.25" and "outside" in line for line in lines)
    assert any(
        line.split()[-1] == "1.00" and "outside the steps" in line
        for line in format_steps(RunTimes(steps, None), 5.0)
    )
    assert verdict(19.9, 402, 2).startswith("PASS")
    assert verdict(20.1, 402, 2).startswith("MISS")
    assert verdict(5.0, 20, 2).startswith("MISS")


@pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="reads /proc (Linux)")
def test_cpu_of_a_live_child_process_is_counted_before_it_ends():
    mark = cpu_mark()
    burner = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.6: pass\ntime.sleep(30)",
        ]
    )
    try:
        deadline = time.monotonic() + 20
        while cpu_since(mark)[1] < 0.5 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert cpu_since(mark)[1] >= 0.5  # still running (sleeping), so only /proc can see it
    finally:
        burner.kill()
        burner.wait()
