"""A run SIGKILLed mid-write frees its ``duckdb`` pool slot: the same step run again completes
within the release time, in process (the CLI) and under the real daemon, and the data is what
a single clean run leaves."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pytest
from dagster._core.storage.dagster_run import DagsterRunStatus

from pm_assets.market import market_assets
from pm_jobs.pool import holders
from pm_resources import MarketDataResource, WarehouseResource
from tests.conftest import shipped_dagster_home

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
FIRST, SECOND = "2018-12-26", "2018-12-27"
TABLES = ("market.ohlcv", "market.quarantine", "market.data_quality", "market.trading_sessions")
RELEASE_SECONDS = 60  # free_slots_after_run_end_seconds (5) + monitoring poll (5) + run start, with margin
LOCATION = ["-m", "tests.integration.gated_definitions"]


def _snapshot(db: Path) -> dict[str, pl.DataFrame]:
    with duckdb.connect(str(db), read_only=True) as conn:
        return {
            t: conn.sql(f"SELECT * FROM {t} ORDER BY ALL").pl().drop("ingested_at", "found_at", strict=False)
            for t in TABLES
        }


def _seed(db: Path) -> None:
    resources = {"warehouse": WarehouseResource(database=str(db)), "market_data": MarketDataResource()}
    assert dg.materialize(market_assets, resources=resources, partition_key=FIRST).success


def _clean_reference(tmp_path: Path) -> dict[str, pl.DataFrame]:
    clean = tmp_path / "clean.duckdb"
    _seed(clean)
    resources = {"warehouse": WarehouseResource(database=str(clean)), "market_data": MarketDataResource()}
    assert dg.materialize(market_assets[1:], resources=resources, partition_key=SECOND).success
    return _snapshot(clean)


@pytest.fixture
def home(tmp_path) -> dict[str, str]:
    dagster_home = shipped_dagster_home(tmp_path / "dagster_home")
    (tmp_path / "gate").mkdir()
    return {
        **os.environ,
        "DAGSTER_HOME": str(dagster_home),
        "PM_HOME": str(tmp_path / "pm_home"),
        "PYTHONPATH": str(ROOT),
        "PM_TEST_GATE": str(tmp_path / "gate"),
        "PM_TEST_GATE_PHASE": "write",
    }


def _wait_for(path: Path, proc: subprocess.Popen | None = None, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc is None or proc.poll() is None, f"exited early with {proc.returncode}"
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.05)


def _wait_until_dead(pid: int, timeout: float = 30) -> None:
    """Until ``pid`` has exited (it is not our child: gone, or a zombie its parent has not reaped).

    The leader of a multi-threaded process shows ``Z`` while its other threads still exit, and
    the process's files (the DuckDB lock) are released only when the last one has: a zombie
    counts as dead once it is the only task left."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            tasks = len(os.listdir(f"/proc/{pid}/task"))
        except OSError:
            return
        if state == "Z" and tasks <= 1:
            return
        assert time.monotonic() < deadline, f"process {pid} still runs"
        time.sleep(0.02)


def _instance(env: dict[str, str]) -> dg.DagsterInstance:
    return dg.DagsterInstance.from_config(env["DAGSTER_HOME"])


def test_in_process_cli_run_after_a_sigkill_completes_and_data_is_clean(home, tmp_path):
    db = Path(home["PM_HOME"]) / "warehouse.duckdb"
    _seed(db)
    before = _snapshot(db)
    cli = [
        str(BIN / "dagster"),
        "asset",
        "materialize",
        *LOCATION,
        "--select",
        "market/ohlcv",
        "--partition",
        SECOND,
    ]
    killed = subprocess.Popen(cli, cwd=ROOT, env=home, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_for(tmp_path / "gate" / "write", killed)
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait(timeout=30)
    assert all(_snapshot(db)[t].equals(before[t]) for t in TABLES)  # nothing of the write landed
    with _instance(home) as instance:
        [stuck] = [h for h in holders(instance) if h.claimed]
        assert stuck.alive is False

    (tmp_path / "gate" / "release").touch()
    began = time.monotonic()
    again = subprocess.run(
        cli, cwd=ROOT, env=home, capture_output=True, text=True, timeout=RELEASE_SECONDS + 60
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert time.monotonic() - began < RELEASE_SECONDS
    with _instance(home) as instance:
        assert instance.get_run_by_id(stuck.run_id).status == DagsterRunStatus.FAILURE
        assert holders(instance) == []
    after, single = _snapshot(db), _clean_reference(tmp_path)
    assert all(after[t].equals(single[t]) for t in TABLES)


def _launch(env: dict[str, str], workspace: Path) -> None:
    """Submit ``ohlcv_job`` for the second session to the instance's queue (the daemon runs it)."""
    tags = json.dumps({"dagster/partition": SECOND})
    cmd = [str(BIN / "dagster"), "job", "launch", "-w", str(workspace), "-j", "ohlcv_job", "--tags", tags]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-4000:]


def test_daemon_run_after_a_sigkill_completes_within_the_release_time(home, tmp_path):
    db = Path(home["PM_HOME"]) / "warehouse.duckdb"
    _seed(db)
    before = _snapshot(db)
    workspace = tmp_path / "workspace.yaml"
    workspace.write_text(
        "load_from:\n  - python_module:\n      module_name: tests.integration.gated_definitions\n"
        f"      working_directory: {ROOT}\n"
    )
    with _instance(home) as instance:  # create the instance's SQLite storage before two processes race to
        assert instance.get_runs() == []
    with open(tmp_path / "daemon.log", "w") as log:
        daemon = subprocess.Popen(
            [str(BIN / "dagster-daemon"), "run", "-w", str(workspace)],
            cwd=ROOT,
            env=home,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _launch(home, workspace)
        _wait_for(tmp_path / "gate" / "write", daemon, timeout=180)
        worker = int((tmp_path / "gate" / "write").read_text())
        os.kill(worker, signal.SIGKILL)
        _wait_until_dead(worker)
        with _instance(home) as instance:
            [first] = instance.get_runs()
        assert all(_snapshot(db)[t].equals(before[t]) for t in TABLES)

        (tmp_path / "gate" / "release").touch()
        began = time.monotonic()
        _launch(home, workspace)
        deadline = began + RELEASE_SECONDS
        while True:
            with _instance(home) as instance:
                second = next(r for r in instance.get_runs() if r.run_id != first.run_id)
                status = second.status
            if status == DagsterRunStatus.SUCCESS:
                break
            assert status not in (DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED), status
            assert time.monotonic() < deadline, f"the second run is still {status} after {RELEASE_SECONDS} s"
            time.sleep(0.5)
        with _instance(home) as instance:
            assert instance.get_run_by_id(first.run_id).status == DagsterRunStatus.FAILURE
            assert holders(instance) == []
    finally:
        os.killpg(daemon.pid, signal.SIGTERM)
        try:
            daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(daemon.pid, signal.SIGKILL)
            daemon.wait()
    after, single = _snapshot(db), _clean_reference(tmp_path)
    assert all(after[t].equals(single[t]) for t in TABLES)
