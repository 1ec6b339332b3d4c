"""``python -m pm_jobs.backfill``: a range of sessions from the command line, in capped runs."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import dagster as dg
import duckdb
import yaml
from dagster._core.storage.tags import REPOSITORY_LABEL_TAG

from pm_jobs.backfill import LOCATION_NAME, REPOSITORY_LABEL
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
    # the run belongs to the code location, so the UI's Jobs page lists it under nightly_job
    instance = dg.DagsterInstance.from_config(env["DAGSTER_HOME"])
    runs = instance.get_runs(
        dg.RunsFilter(job_name="nightly_job", tags={REPOSITORY_LABEL_TAG: REPOSITORY_LABEL})
    )
    assert len(runs) == 1
    instance.dispose()


def test_cli_runs_carry_the_workspace_location_label():
    workspace = yaml.safe_load((ROOT / "workspace.yaml").read_text())
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert workspace["load_from"][0]["python_module"]["location_name"] == LOCATION_NAME
    assert pyproject["tool"]["dagster"]["code_location_name"] == LOCATION_NAME
    assert f"__repository__@{LOCATION_NAME}" == REPOSITORY_LABEL


def test_a_range_without_sessions_is_refused_with_a_message(tmp_path):
    done = _backfill(_env(tmp_path), "2018-12-25", "2018-12-25")
    assert done.returncode != 0
    assert "2018-12-25" in done.stderr and "Traceback" not in done.stderr
