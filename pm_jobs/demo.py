"""``make demo``: run the nightly job once over the whole bundled history, offline.

Runs in-process against the Dagster instance in ``$DAGSTER_HOME`` (so the run, its asset
materializations and check results show up in ``make dev``'s UI), as one run over the
partition range covered by the bundled data, then prints where the DuckDB file is and what
it holds.
"""

from __future__ import annotations

import datetime as dt
import os
import sys

import dagster as dg
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from model_code.market_data.calendar import trading_calendar
from model_code.market_data.sources.bundled import bundled_bars
from model_code.settings import duckdb_path
from model_code.warehouse import Warehouse
from pm_definitions.definitions import defs


# Dagster records one event per partition (and, for each asset check, one planned row per
# partition carrying the whole range), so a run's bookkeeping grows faster than linearly with
# its length. Seven years covers every bundled ticker (^GSPC/^IXIC end in 2018) and keeps
# the demo to a few minutes; set PM_DEMO_START=1990-01-02 for the full history.
DEFAULT_DEMO_START = "2016-01-04"


def demo_range() -> tuple[str, str]:
    """First and last session of the demo run: ``$PM_DEMO_START`` to the last bundled bar."""
    dates = bundled_bars().get_column("date")
    start = dt.date.fromisoformat(os.environ.get("PM_DEMO_START") or DEFAULT_DEMO_START)
    sessions = trading_calendar().sessions_in_range(max(start, dates.min()), dates.max())
    return str(sessions[0]), str(sessions[-1])


def main() -> int:
    start, end = demo_range()
    print(f"Running nightly_job over the bundled history {start}..{end} (one run, offline) ...")
    result = defs.resolve_job_def("nightly_job").execute_in_process(
        instance=dg.DagsterInstance.get(),
        run_config={"loggers": {"console": {"config": {"log_level": "INFO"}}}},
        tags={ASSET_PARTITION_RANGE_START_TAG: start, ASSET_PARTITION_RANGE_END_TAG: end},
        raise_on_error=False,
    )
    if not result.success:
        print("nightly_job failed; see the run in the UI (make dev) or the log above.", file=sys.stderr)
        return 1
    import duckdb

    path = duckdb_path()
    with duckdb.connect(str(path), read_only=True) as conn:
        wh = Warehouse(conn)
        coverage = wh.query("SELECT * FROM market.ticker_coverage ORDER BY ticker")
        quarantined = wh.count("market.quarantine")
    print(coverage)
    print(f"\n{coverage['n_bars'].sum()} bars for {coverage.height} tickers; {quarantined} rows quarantined.")
    for check in result.get_asset_check_evaluations():
        status = "passed" if check.passed else f"FAILED ({check.severity.value})"
        print(f"  check {check.check_name}: {status}")
    print(f"\nDuckDB warehouse: {path}")
    print(f"  query it:  .venv/bin/python -c \"import duckdb; print(duckdb.connect('{path}', read_only=True).sql('FROM market.ticker_coverage'))\"")
    print("Dagster UI: make dev, then open http://127.0.0.1:3000 (runs, lineage, checks)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
