"""The commands a CI runs, as the README shows them, each against a temporary home.

``dg check defs`` loads the definitions; ``dagster asset materialize`` runs two assets for one
session; ``dagster job execute`` runs ``nightly_job`` for the next session. Each runs in a fresh
``DAGSTER_HOME`` (holding the shipped ``dagster.yaml``) and ``PM_HOME`` on two bundled tickers;
the runs land in that instance and their rows in that warehouse. The commands are the README's
own lines (a test checks they are still there), so the README stays true.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb

from tests.conftest import shipped_dagster_home

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
TICKERS = ["AAPL", "MSFT"]
SESSION, NEXT_SESSION = "2022-12-22", "2022-12-23"
CHECK_DEFS = ".venv/bin/dg check defs"
MATERIALIZE = (
    ".venv/bin/dagster asset materialize -m pm_definitions.definitions "
    f"--select market/universe,market/ohlcv --partition {SESSION}"
)
NIGHTLY = (
    ".venv/bin/dagster job execute -m pm_definitions.definitions -j nightly_job "
    f'--tags \'{{"dagster/partition": "{NEXT_SESSION}"}}\''
)
# Rows nightly_job must leave for its session whatever the history (one session before it here).
NIGHTLY_ROWS = {
    "market.ohlcv": "date",
    "market.trading_sessions": "date",
    "features.daily": "date",
    "signals.daily": "as_of",
    "portfolio.allocations": "as_of",
    "paper.equity": "date",
}


def _home(tmp_path: Path) -> tuple[dict[str, str], Path, Path]:
    dagster_home = shipped_dagster_home(tmp_path / "dagster_home")
    pm_home = tmp_path / "pm"
    universe = tmp_path / "universe.yaml"
    universe.write_text("tickers:\n" + "".join(f"  - {t}\n" for t in TICKERS))
    env = {
        **os.environ,
        "DAGSTER_HOME": str(dagster_home),
        "PM_HOME": str(pm_home),
        "PM_UNIVERSE": str(universe),
        "PM_SOURCES": "bundled",
        # what `make` exports: dg checks the active venv against the project's
        "VIRTUAL_ENV": str(BIN.parent),
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "OMP_NUM_THREADS": "1",
        "OMP_WAIT_POLICY": "PASSIVE",
    }
    return env, dagster_home, pm_home / "warehouse.duckdb"


def _run(command: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """One README line, its ``.venv/bin/`` programs taken from this interpreter's venv."""
    args = [
        str(BIN / a.removeprefix(".venv/bin/")) if a.startswith(".venv/bin/") else a
        for a in shlex.split(command)
    ]
    done = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{command}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def _runs(dagster_home: Path) -> list[dg.DagsterRun]:
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        return list(instance.get_runs())


def test_the_readme_shows_these_commands():
    readme = (ROOT / "README.md").read_text()
    section = re.search(r"^## From the command line \(CI\)\n(.*?)(?=^## )", readme, re.S | re.M)
    assert section, "README.md has no '## From the command line (CI)' section"
    for command in (CHECK_DEFS, MATERIALIZE, NIGHTLY):
        assert command in section.group(1), command


def test_dg_check_defs(tmp_path):
    env, _, _ = _home(tmp_path)
    done = _run(CHECK_DEFS, env)
    assert "All definitions loaded successfully" in done.stdout + done.stderr


def test_one_asset_partition_then_the_nightly_job_for_the_next_session(tmp_path):
    env, dagster_home, db = _home(tmp_path)
    _run(MATERIALIZE, env)
    with duckdb.connect(str(db), read_only=True) as conn:
        bars = conn.execute("SELECT ticker, date::VARCHAR FROM market.ohlcv ORDER BY ticker").fetchall()
    assert bars == [(t, SESSION) for t in TICKERS]
    (run,) = _runs(dagster_home)
    assert run.status == dg.DagsterRunStatus.SUCCESS and run.tags["dagster/partition"] == SESSION

    _run(NIGHTLY, env)
    with duckdb.connect(str(db), read_only=True) as conn:
        counts = {
            table: conn.execute(
                f"SELECT count(*) FROM {table} WHERE {column} = ?", [NEXT_SESSION]
            ).fetchone()[0]
            for table, column in NIGHTLY_ROWS.items()
        }
        sessions = conn.execute("SELECT DISTINCT date::VARCHAR FROM market.ohlcv ORDER BY 1").fetchall()
    assert all(counts.values()), counts
    assert counts["market.ohlcv"] == len(TICKERS)
    assert sessions == [(SESSION,), (NEXT_SESSION,)]
    nightly = [r for r in _runs(dagster_home) if r.job_name == "nightly_job"]
    assert len(nightly) == 1, nightly
    assert nightly[0].status == dg.DagsterRunStatus.SUCCESS
    assert nightly[0].tags["dagster/partition"] == NEXT_SESSION
