"""ML stage: feature building + 5-day LightGBM training, and the whole train -> predict -> report run.

Each part runs in a fresh child process (cold interpreter, imports included); its wall time is
measured around the child and its peak RSS is the child's own ``ru_maxrss`` from ``os.wait4``.

(a) load + validate the shared bars (reported, not counted), then build features and targets and
    train the 5-day LightGBM on the train window 2015-03-01..2017-06-30 (early-stopped on
    2017-07-01..2017-12-31). Target: features + targets + training <= 15 s on 2 cores.
(b) ``model_code.ml.report.run_report`` for horizons 1/5/21/63 (LightGBM + Bayesian ridge, test
    2018-2019 scored, markdown written to a temp file), by default one seed and the default config,
    as Qlib's single run. Target: less time and memory than Qlib's 38 s / 1.8 GiB.

    python -m benchmarks.ml [--parquet PATH] [--seeds 1] [--search]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import DEFAULT_PARQUET

TARGET_A_SECONDS = 15.0
QLIB_SECONDS, QLIB_GIB = 38.0, 1.8


def _mark(ok: bool) -> str:
    return "met" if ok else "MISSED"


def part_a(parquet: Path) -> None:
    """Child: time cleaning, features + targets, and the 5-day LightGBM fit; print one line each."""
    from model_code.evaluation.clean_bars import load_clean_bars
    from model_code.features import build_daily_features, build_targets
    from model_code.ml.report import TRAIN, VALID
    from model_code.ml.training import train_horizon_model

    t0 = time.perf_counter()
    bars = load_clean_bars(parquet).bars
    t1 = time.perf_counter()
    features, targets = build_daily_features(bars), build_targets(bars)
    t2 = time.perf_counter()
    model = train_horizon_model(features, targets, 5, train=TRAIN, valid=VALID)
    t3 = time.perf_counter()
    work = t3 - t1
    tickers = bars["ticker"].n_unique()
    print(f"  load + validate {t1 - t0:.2f} s ({bars.height:,} rows, {tickers} tickers; not counted)")
    print(
        f"  features + targets {t2 - t1:.2f} s, 5-day LightGBM train {t3 - t2:.2f} s "
        f"({model.valid_metrics['train_rows']:.0f} rows, {model.valid_metrics['best_iteration']:.0f} trees)"
    )
    print(
        f"  (a) features + training {work:.2f} s (target <= {TARGET_A_SECONDS:.0f} s): {_mark(work <= TARGET_A_SECONDS)}"
    )


def part_b(parquet: Path, seeds: int, search: bool) -> None:
    """Child: the whole report run (all horizons), markdown to a temporary file."""
    from model_code.ml.report import run_report

    with tempfile.TemporaryDirectory() as tmp:
        res = run_report(parquet, Path(tmp) / "ml_walkforward.md", seeds=seeds, search=search)
    print(
        f"  report run in-process {res['wall_seconds']:.2f} s (data {res['data_seconds']:.2f} s), "
        f"{res['trials'].height} model fits"
    )


def run_child(args: list[str]) -> tuple[float, float, int]:
    """Run ``python -m benchmarks.ml ARGS``; wall seconds, child peak RSS (MiB), exit status."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "benchmarks.ml", *args])
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return time.perf_counter() - t0, usage.ru_maxrss / 1024.0, proc.returncode


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parquet", type=Path, default=DEFAULT_PARQUET)
    ap.add_argument("--seeds", type=int, default=1, help="LightGBM seeds in part (b)")
    ap.add_argument("--search", action="store_true", help="part (b) with the validation search")
    ap.add_argument("--part", choices=("a", "b"), help=argparse.SUPPRESS)  # child mode
    args = ap.parse_args(argv)
    if args.part == "a":
        part_a(args.parquet)
        return 0
    if args.part == "b":
        part_b(args.parquet, args.seeds, args.search)
        return 0
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(
        f"benchmarks.ml: {cores} cores, load average {os.getloadavg()[0]:.2f} at start, {args.parquet.name}"
    )
    print("(a) feature building + 5-day LightGBM training (fresh process)")
    wall_a, rss_a, rc_a = run_child(["--part", "a", "--parquet", str(args.parquet)])
    print(
        f"  child wall {wall_a:.2f} s incl. interpreter start, imports and loading; peak RSS {rss_a:.0f} MiB"
    )
    print(
        f"(b) whole train -> predict -> report run, horizons 1/5/21/63, {args.seeds} seed(s), "
        f"search {'on' if args.search else 'off'} (fresh process)"
    )
    extra = ["--seeds", str(args.seeds), *(["--search"] if args.search else [])]
    wall_b, rss_b, rc_b = run_child(["--part", "b", "--parquet", str(args.parquet), *extra])
    gib = rss_b / 1024.0
    print(f"  child wall {wall_b:.2f} s vs Qlib {QLIB_SECONDS:.0f} s: {_mark(wall_b < QLIB_SECONDS)}")
    print(f"  child peak RSS {gib:.2f} GiB vs Qlib {QLIB_GIB} GiB: {_mark(gib < QLIB_GIB)}")
    return rc_a or rc_b


if __name__ == "__main__":
    raise SystemExit(main())
