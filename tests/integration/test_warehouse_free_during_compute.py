"""Open late, close early: while a step fetches or fits, other processes can read the file,
and killing the step then leaves the file exactly as it was."""

from __future__ import annotations

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

from pm_assets.market import market_assets
from pm_resources import MarketDataResource, WarehouseResource

FIRST, SECOND = "2018-12-26", "2018-12-27"
ROOT = Path(__file__).resolve().parents[2]
SNAPSHOT = "SELECT * FROM {} ORDER BY ALL"
TABLES = ("market.ohlcv", "market.quarantine", "market.data_quality", "market.trading_sessions")


def _resources(db: Path) -> dict:
    return {"warehouse": WarehouseResource(database=str(db)), "market_data": MarketDataResource()}


def _read(db: Path) -> dict[str, pl.DataFrame]:
    with duckdb.connect(str(db), read_only=True) as conn:
        return {
            t: conn.sql(SNAPSHOT.format(t)).pl().drop("ingested_at", "found_at", strict=False) for t in TABLES
        }


def _start_held_run(db: Path, gate: Path, partition: str, phase: str = "fetch") -> subprocess.Popen:
    gate.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.gated_ohlcv_run", str(db), partition],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "PM_TEST_GATE": str(gate), "PM_TEST_GATE_PHASE": phase},
    )
    deadline = time.monotonic() + 120
    while not (gate / phase).exists():
        assert proc.poll() is None, f"the held run exited early with {proc.returncode}"
        assert time.monotonic() < deadline, f"the held run never reached its {phase}"
        time.sleep(0.05)
    return proc


@pytest.fixture
def stored_first_session(tmp_path) -> Path:
    db = tmp_path / "warehouse.duckdb"
    assert dg.materialize(market_assets, resources=_resources(db), partition_key=FIRST).success
    return db


def test_another_process_reads_ohlcv_while_the_step_fetches(stored_first_session, tmp_path):
    db = stored_first_session
    before = _read(db)
    proc = _start_held_run(db, tmp_path / "gate", SECOND)
    try:
        during = _read(db)  # a read-only connection from this, another, process
        assert during["market.ohlcv"].height == before["market.ohlcv"].height > 0
        (tmp_path / "gate" / "release").touch()
        assert proc.wait(timeout=120) == 0
    finally:
        proc.kill()
    after = _read(db)["market.ohlcv"]
    assert set(after["date"].cast(pl.String)) == {FIRST, SECOND}


@pytest.mark.parametrize("phase", ["fetch", "write"])
def test_a_kill_during_the_fetch_or_the_write_leaves_the_file_as_it_was_and_a_rerun_completes(
    stored_first_session, tmp_path, phase
):
    db = stored_first_session
    before = _read(db)
    proc = _start_held_run(db, tmp_path / "gate", SECOND, phase)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert all(_read(db)[t].equals(before[t]) for t in TABLES)

    # The same step again completes and leaves what a single clean run leaves.
    assert dg.materialize(market_assets[1:], resources=_resources(db), partition_key=SECOND).success
    clean = tmp_path / "clean.duckdb"
    assert dg.materialize(market_assets, resources=_resources(clean), partition_key=FIRST).success
    assert dg.materialize(market_assets[1:], resources=_resources(clean), partition_key=SECOND).success
    rerun, single = _read(db), _read(clean)
    assert all(rerun[t].equals(single[t]) for t in TABLES)
