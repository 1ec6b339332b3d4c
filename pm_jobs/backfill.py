"""Run a job over a range of sessions from the command line, cut as a UI backfill cuts it.

    python -m pm_jobs.backfill 2018-12-17 2018-12-31 [--job nightly_job] [--select market/ohlcv ...]

Dagster's own ``dagster asset materialize --partition-range`` refuses assets whose backfill
policy is ``multi_run`` (ours are: one run per ~half year keeps a backfill's bookkeeping linear,
see docs/architecture.md). This command runs the range in runs of at most
``MAX_PARTITIONS_PER_RUN`` sessions through the shipped executor (so a killed earlier run's pool
slot is recovered), against the instance in ``$DAGSTER_HOME`` (unset: ``$PM_HOME/dagster_home``, the
one ``make dev`` uses), and stops at the first failed run.
``make demo`` uses the same functions.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
import warnings
from collections.abc import Sequence

import dagster as dg
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    REPOSITORY_LABEL_TAG,
)

# backfill_policy is a Dagster beta parameter we use on purpose; keep the output clean.
warnings.filterwarnings("ignore", category=dg.BetaWarning)

from model_code.market_data.calendar import trading_calendar  # noqa: E402
from model_code.progress import track  # noqa: E402
from pm_assets.market.ohlcv import MAX_PARTITIONS_PER_RUN  # noqa: E402
from pm_assets.partitions import trading_days  # noqa: E402
from pm_definitions.definitions import defs  # noqa: E402
from pm_jobs.instance import dagster_instance  # noqa: E402

QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
# The code location of workspace.yaml. Runs launched from the UI carry its label; runs made here
# carry it too, so the UI's Jobs page and Overview timeline list them under their job.
LOCATION_NAME = "portfolio_maximizer"
REPOSITORY_LABEL = f"__repository__@{LOCATION_NAME}"


def _nightly_job() -> dg.JobDefinition:
    return defs.resolve_job_def("nightly_job")


def _ml_training_job() -> dg.JobDefinition:
    return defs.resolve_job_def("ml_training_job")


JOBS = {"nightly_job": _nightly_job, "ml_training_job": _ml_training_job}


def session_chunks(start: str, end: str, size: int = MAX_PARTITIONS_PER_RUN) -> list[list[str]]:
    """The partition keys (sessions) of ``start..end`` in runs of at most ``size``; both ends
    must be NYSE sessions (a typo'd or holiday date is refused, not silently moved)."""
    calendar = trading_calendar()
    for name, value in (("start", start), ("end", end)):
        try:
            day = dt.date.fromisoformat(value)
        except ValueError:
            raise SystemExit(f"{name} {value[:40]!r} is not a date (YYYY-MM-DD)") from None
        if not calendar.is_session(day):
            raise SystemExit(f"{name} {value} is not an NYSE session; give a trading day")
    if start > end:
        raise SystemExit(f"start {start} is after end {end}")
    keys = trading_days.get_partition_keys_in_range(dg.PartitionKeyRange(start, end))
    return [keys[i : i + size] for i in range(0, len(keys), size)]


def run_job(
    instance: dg.DagsterInstance,
    job_name: str,
    keys: Sequence[str] | None,
    selection: Sequence[dg.AssetKey] | None = None,
    run_config: dict | None = None,
) -> dg.JobExecutionResult:
    """One run of ``job_name`` over the sessions ``keys`` (None: an unpartitioned run)."""
    tags = {REPOSITORY_LABEL_TAG: REPOSITORY_LABEL}
    if keys:
        tags |= {ASSET_PARTITION_RANGE_START_TAG: keys[0], ASSET_PARTITION_RANGE_END_TAG: keys[-1]}
    return dg.execute_job(
        dg.reconstructable(JOBS[job_name]),
        instance=instance,
        run_config={**QUIET, **(run_config or {})},
        tags=tags,
        asset_selection=list(selection) if selection else None,
        raise_on_error=False,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pm_jobs.backfill", description=__doc__.split("\n\n")[0])
    parser.add_argument("start", help="first session, YYYY-MM-DD")
    parser.add_argument("end", help="last session, YYYY-MM-DD")
    parser.add_argument("--job", default="nightly_job", choices=["nightly_job"])
    parser.add_argument("--select", nargs="*", help="asset keys (e.g. market/ohlcv); default: the whole job")
    args = parser.parse_args(argv)
    selection = [dg.AssetKey.from_user_string(k) for k in args.select] if args.select else None
    chunks = session_chunks(args.start, args.end)
    print(
        f"{args.job} over {args.start}..{args.end}: {sum(map(len, chunks))} sessions in {len(chunks)} run(s)"
    )
    instance_ = dagster_instance()
    for chunk in track(chunks, f"{args.job} runs", log=print, every_seconds=0):
        began = time.perf_counter()
        result = run_job(instance_, args.job, chunk, selection)
        span = f"{chunk[0]}..{chunk[-1]}"
        if not result.success:
            print(f"run {result.run_id} for {span} failed; see it in the UI (make dev)", file=sys.stderr)
            return 1
        print(f"  {span}: run {result.run_id[:8]} ok in {time.perf_counter() - began:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
