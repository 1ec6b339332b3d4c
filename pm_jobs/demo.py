"""``make demo``: run the nightly job over the bundled history, offline.

Runs in-process against the Dagster instance in ``$DAGSTER_HOME`` (so the runs, their asset
materializations and check results show up in ``make dev``'s UI), cut into runs of at most a
trading year the way the asset's backfill policy cuts a UI backfill, then prints where the
DuckDB file is and what it holds.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import time
import warnings

import dagster as dg
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from model_code.market_data.calendar import trading_calendar
from model_code.market_data.sources.bundled import bundled_bars
from model_code.settings import duckdb_path
from model_code.warehouse import Warehouse

# backfill_policy is a Dagster beta parameter we use on purpose; keep the demo's output clean.
warnings.filterwarnings("ignore", category=dg.BetaWarning)

from pm_assets.market.ohlcv import MAX_PARTITIONS_PER_RUN  # noqa: E402
from pm_assets.partitions import trading_days  # noqa: E402
from pm_definitions.definitions import defs  # noqa: E402

# Five years cover every bundled ticker (^GSPC/^IXIC end in 2018) and keep the demo to a
# couple of minutes; PM_DEMO_START=1990-01-02 loads the whole bundled history (~66 runs).
DEFAULT_DEMO_START = "2018-01-02"
HISTORY_ASSETS = [
    dg.AssetKey(["market", "universe"]),
    dg.AssetKey(["market", "ohlcv"]),
    dg.AssetKey(["features", "daily"]),
    dg.AssetKey(["features", "targets"]),
]


def demo_range() -> tuple[str, str]:
    """First and last session of the demo run: ``$PM_DEMO_START`` to the last bundled bar."""
    dates = bundled_bars().get_column("date")
    start = dt.date.fromisoformat(os.environ.get("PM_DEMO_START") or DEFAULT_DEMO_START)
    sessions = trading_calendar().sessions_in_range(max(start, dates.min()), dates.max())
    return str(sessions[0]), str(sessions[-1])


def main() -> int:
    start, end = demo_range()
    keys = trading_days.get_partition_keys_in_range(dg.PartitionKeyRange(start, end))
    chunks = [keys[i : i + MAX_PARTITIONS_PER_RUN] for i in range(0, len(keys), MAX_PARTITIONS_PER_RUN)]
    print(
        f"Running nightly_job over the bundled history {start}..{end}: {len(keys)} sessions "
        f"in {len(chunks)} runs of at most {MAX_PARTITIONS_PER_RUN} (as a backfill would), offline ..."
    )
    job = defs.resolve_job_def("nightly_job")
    instance = dg.DagsterInstance.get()
    checks: dict[str, tuple[bool, str]] = {}
    # History: bars, features and targets for every session. Forecasts are a nightly product
    # (a full refit of every model per as_of), so they run once, for the last session.
    plan = [(chunk, HISTORY_ASSETS) for chunk in chunks] + [([keys[-1]], None)]
    for chunk, selection in plan:
        began = time.perf_counter()
        result = job.execute_in_process(
            instance=instance,
            run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
            tags={ASSET_PARTITION_RANGE_START_TAG: chunk[0], ASSET_PARTITION_RANGE_END_TAG: chunk[-1]},
            asset_selection=selection,
            raise_on_error=False,
        )
        if not result.success:
            print(
                f"nightly_job failed for {chunk[0]}..{chunk[-1]} (run {result.run_id}); "
                "see the log above or the run in the UI (make dev).",
                file=sys.stderr,
            )
            return 1
        for check in result.get_asset_check_evaluations():
            ok, _ = checks.get(check.check_name, (True, ""))
            checks[check.check_name] = (ok and check.passed, check.severity.value)
        what = "bars, features, targets" if selection else "full nightly job incl. forecasts"
        print(
            f"  {chunk[0]}..{chunk[-1]} ({what}): run {result.run_id[:8]} ok in {time.perf_counter() - began:.1f}s"
        )
    import duckdb

    path = duckdb_path()
    with duckdb.connect(str(path), read_only=True) as conn:
        wh = Warehouse(conn)
        coverage = wh.query("SELECT * FROM market.ticker_coverage ORDER BY ticker")
        quarantined = wh.count("market.quarantine")
        features = wh.count("features.daily")
        targets = wh.count("features.targets")
        forecasts = wh.query(
            "SELECT model, horizon, count(*) AS tickers, round(avg(yhat), 5) AS mean_yhat "
            "FROM forecasts.predictions GROUP BY ALL ORDER BY model, horizon"
        )
    print(coverage)
    print(
        f"\n{coverage['n_bars'].sum()} bars for {coverage.height} tickers; {quarantined} rows quarantined; "
        f"{features} feature rows; {targets} target rows."
    )
    print(f"Forecasts for {keys[-1]} (cumulative log return over h sessions):")
    print(forecasts)
    for name, (ok, severity) in checks.items():
        print(f"  check {name}: {'passed in every run' if ok else f'did not pass in some run ({severity})'}")
    print(f"\nDuckDB warehouse: {path}")
    print(
        f"  query it:  .venv/bin/python -c \"import duckdb; print(duckdb.connect('{path}', read_only=True).sql('FROM market.ticker_coverage'))\""
    )
    print("Dagster UI: make dev, then open http://127.0.0.1:3000 (runs, lineage, checks)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
