"""The command line over a partition range of ``market/ohlcv``, in fresh processes.

``dagster asset materialize --partition-range`` only runs assets whose backfill policy is
``single_run()``; ``market/ohlcv`` cuts backfills into runs of at most 126 sessions
(``multi_run(126)``, docs/architecture.md), so Dagster's CLI refuses it before any project code
runs. The refusal must say why, and the command the asset's docstring gives instead
(``dagster job execute`` with the range tags) must ingest the range.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb

from tests.conftest import shipped_dagster_home

ROOT = Path(__file__).resolve().parents[2]
DAGSTER = Path(sys.executable).with_name("dagster")
RANGE = ("2018-12-17", "2018-12-31")  # 10 sessions of the bundled data


def _env(tmp_path: Path) -> dict[str, str]:
    home = shipped_dagster_home(tmp_path / "dagster_home")
    return {**os.environ, "PM_HOME": str(tmp_path / "pm_home"), "DAGSTER_HOME": str(home)}


def _dagster(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(DAGSTER), *args, "-m", "pm_definitions.definitions"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_asset_materialize_refuses_a_range_and_says_why(tmp_path):
    done = _dagster(
        ["asset", "materialize", "--select", "market/ohlcv", "--partition-range", "...".join(RANGE)],
        _env(tmp_path),
    )
    assert done.returncode != 0
    assert (
        "Partition ranges with the CLI require all selected assets to have a BackfillPolicy.single_run()"
        in done.stderr
    )
    assert not (tmp_path / "pm_home" / "warehouse.duckdb").exists()


def test_job_execute_with_range_tags_ingests_the_range(tmp_path):
    tags = {"dagster/asset_partition_range_start": RANGE[0], "dagster/asset_partition_range_end": RANGE[1]}
    args = [
        "job",
        "execute",
        "-j",
        "nightly_job",
        "-o",
        "market__universe,market__ohlcv",
        "--tags",
        json.dumps(tags),
    ]
    done = _dagster(args, _env(tmp_path))
    assert done.returncode == 0, done.stderr[-3000:]
    with duckdb.connect(str(tmp_path / "pm_home" / "warehouse.duckdb"), read_only=True) as conn:
        n, days = conn.execute("SELECT count(*), count(DISTINCT date) FROM market.ohlcv").fetchone()
    assert (n, days) == (230, 10)  # 23 bundled tickers x 10 sessions, in one run
