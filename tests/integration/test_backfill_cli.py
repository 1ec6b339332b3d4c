"""``python -m pm_jobs.backfill``: a range of sessions from the command line, in capped runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb

from tests.conftest import shipped_dagster_home

ROOT = Path(__file__).resolve().parents[2]


def _env(tmp_path: Path) -> dict[str, str]:
    home = shipped_dagster_home(tmp_path / "dagster_home")
    return {**os.environ, "DAGSTER_HOME": str(home), "PM_HOME": str(tmp_path / "pm"), "PYTHONPATH": str(ROOT)}


def _backfill(env, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pm_jobs.backfill", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_range_runs_in_capped_runs_and_stores_every_session(tmp_path):
    env = _env(tmp_path)
    done = _backfill(env, "2018-12-17", "2018-12-31", "--select", "market/universe", "market/ohlcv")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "10 sessions in 1 run(s)" in done.stdout and "2018-12-17..2018-12-31: run" in done.stdout
    with duckdb.connect(str(tmp_path / "pm" / "warehouse.duckdb"), read_only=True) as conn:
        assert conn.execute("SELECT count(*) FROM market.ohlcv").fetchone()[0] == 230


def test_a_range_without_sessions_is_refused_with_a_message(tmp_path):
    done = _backfill(_env(tmp_path), "2018-12-25", "2018-12-25")
    assert done.returncode != 0
    assert "2018-12-25" in done.stderr and "Traceback" not in done.stderr
