"""Feature engine speed: ``build_daily_features`` on a synthetic universe of 400 tickers x 1250 bars.

The panel is ``synthetic_bars(400, 1250, seed=1, close_only=20)`` (20 close-only tickers, so the
NULL paths are timed too), built untimed first. Each of ``--repeat`` runs times one
``build_daily_features`` call in this process; the best run is checked against the target.
Target: <= 10 s for the whole panel (it was a test assertion before; timings belong here).

    python -m benchmarks.features [--tickers 400] [--bars 1250] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import time

from model_code.features import build_daily_features
from model_code.features.synthetic import synthetic_bars

TARGET_SECONDS, TARGET_TICKERS, TARGET_BARS = 10.0, 400, 1250


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tickers", type=int, default=TARGET_TICKERS)
    ap.add_argument("--bars", type=int, default=TARGET_BARS, help="sessions per ticker")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    bars = synthetic_bars(args.tickers, args.bars, seed=1, close_only=min(20, args.tickers))
    print(
        f"benchmarks.features: {cores} cores, load average {os.getloadavg()[0]:.2f} at start; "
        f"{args.tickers} tickers x {args.bars} bars = {bars.height:,} rows"
    )
    runs = []
    for _ in range(args.repeat):
        began = time.perf_counter()
        feats = build_daily_features(bars)
        runs.append(time.perf_counter() - began)
    if feats.height != bars.height:  # a benchmark of wrong output measures nothing
        raise RuntimeError(f"{feats.height} feature rows for {bars.height} bars")
    best = min(runs)
    at_target = args.tickers == TARGET_TICKERS and args.bars == TARGET_BARS
    verdict = ("met" if best <= TARGET_SECONDS else "MISSED") if at_target else "not checked (other size)"
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  build_daily_features runs: {', '.join(f'{r:.2f} s' for r in runs)}")
    print(
        f"  best {best:.2f} s = {bars.height / best:,.0f} rows/s "
        f"(target <= {TARGET_SECONDS:.0f} s for {TARGET_TICKERS} x {TARGET_BARS}): {verdict}; "
        f"peak RSS {peak:.0f} MiB"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
