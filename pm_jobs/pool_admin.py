"""``python -m pm_jobs.pool_admin [status|recover|free RUN_ID]``: the ``duckdb`` pool by hand.

``status`` lists the runs that hold or wait for the pool and whether their process still runs;
``recover`` frees the slots of dead runs (what every run of the shipped executor does first);
``free RUN_ID`` frees one run's slots. Uses the instance in ``$DAGSTER_HOME`` (unset: the one
``make dev`` uses, ``$PM_HOME/dagster_home``).
"""

from __future__ import annotations

import argparse
import sys

from pm_jobs.instance import dagster_instance
from pm_jobs.pool import holders, recover
from pm_resources import DUCKDB_POOL


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pm_jobs.pool_admin", description=__doc__.split("\n\n")[1]
    )
    parser.add_argument("action", choices=["status", "recover", "free"])
    parser.add_argument("run_id", nargs="?", help="the run whose slots to free (with 'free')")
    parser.add_argument("--pool", default=DUCKDB_POOL)
    args = parser.parse_args(argv)
    instance = dagster_instance()
    if args.action == "free":
        if not args.run_id:
            parser.error("free needs a RUN_ID (see 'status')")
        instance.event_log_storage.free_concurrency_slots_for_run(args.run_id)
        print(f"freed the slots of run {args.run_id}")
        return 0
    if args.action == "recover":
        freed = recover(instance, args.pool, log=print)
        print(f"{len(freed)} dead run(s) freed")
        return 0
    found = holders(instance, args.pool)
    for holder in found:
        print(("DEAD  " if holder.dead else "      ") + holder.describe())
    print(f"{len(found)} run(s) hold or wait for the '{args.pool}' pool")
    return 0


if __name__ == "__main__":
    sys.exit(_main())
