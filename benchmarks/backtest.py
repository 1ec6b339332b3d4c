"""Backtester speed: the daily-rebalanced target-weight backtest of the shared panel, in process.

The accepted bars of the shared file (``load_clean_bars``: 401 of its 402 tickers keep bars) are
pivoted, untimed, into date x ticker panels of split/dividend-adjusted opens and closes and
volume (shares, adjusted so ``close * volume`` is the raw dollar volume). The weights are 1/N
over the tickers with a close, decided at every close. Timed: ``run_backtest`` with the defaults
(5 + 5 bps, next-bar fills, 10 % participation cap), best of ``--repeat`` after one untimed
warm-up run (no JIT: the warm-up only loads caches); beside it, in the same run, a plain-NumPy
floor: the same weights' frictionless close-to-close return path, loop-free
(``cumprod(1 + sum(w[t-1] * r[t]))``), best of ``--repeat``.

TODO(vectorbt): the issue also asks for the ratio against vectorbt's ``Portfolio.from_orders`` on
the same weights (0.31 s measured there); vectorbt needs an optional ``bench`` extra (or a venv of
its own) that is not installed, so that line is not printed yet.

    python -m benchmarks.backtest [--parquet PATH] [--repeat 20]

Target (issue 11): <= 0.05 s warm for the 402 x 1,259 panel.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

import numpy as np
import polars as pl

from benchmarks import DEFAULT_PARQUET
from model_code.backtest.engine import run_backtest
from model_code.evaluation.clean_bars import load_clean_bars
from model_code.execution import ExecutionConfig

TARGET_SECONDS = 0.05
INITIAL_CASH = 10_000_000.0


def panels(path: str) -> dict[str, np.ndarray]:
    """Date x ticker panels (NaN where a ticker has no bar) of the accepted bars."""
    bars = load_clean_bars(path).bars.with_columns(factor=pl.col("adj_close") / pl.col("close"))
    bars = bars.with_columns(
        open_adj=pl.col("open") * pl.col("factor"), volume_adj=pl.col("volume") / pl.col("factor")
    )

    def pivot(column: str) -> np.ndarray:
        wide = bars.pivot(on="ticker", index="date", values=column, sort_columns=True).sort("date")
        return wide.drop("date").to_numpy().astype(np.float64)

    close = pivot("adj_close")
    has = np.isfinite(close)
    weights = np.where(has, 1.0, 0.0) / has.sum(axis=1, keepdims=True)
    return {"weights": weights, "open_": pivot("open_adj"), "close": close, "volume": pivot("volume_adj")}


def floor(weights: np.ndarray, close: np.ndarray) -> np.ndarray:
    """The same weights' frictionless equity path, loop-free: weights of close t earn r[t+1]."""
    ret = np.nan_to_num(close[1:] / close[:-1] - 1.0)
    growth = 1.0 + (np.nan_to_num(weights[:-1]) * ret).sum(axis=1)
    return INITIAL_CASH * np.concatenate(([1.0], np.cumprod(growth)))


def best_of(repeat: int, work: Callable[[], object]) -> tuple[float, list[float], object]:
    times, out = [], None
    for _ in range(repeat):
        began = time.perf_counter()
        out = work()
        times.append(time.perf_counter() - began)
    return min(times), times, out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parquet", default=DEFAULT_PARQUET)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args(argv)
    p = panels(args.parquet)
    n, m = p["close"].shape
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(
        f"benchmarks.backtest: {cores} cores, load average {os.getloadavg()[0]:.2f} at start; "
        f"panel {n:,} sessions x {m} tickers, 1/N daily, defaults (5 + 5 bps, next bar, 10 % of ADV)"
    )
    run_backtest(**p, initial_cash=INITIAL_CASH)  # warm-up, untimed
    best, times, result = best_of(args.repeat, lambda: run_backtest(**p, initial_cash=INITIAL_CASH))
    impact = ExecutionConfig(impact_k=1.0)
    impact_best, _, _ = best_of(
        args.repeat, lambda: run_backtest(**p, initial_cash=INITIAL_CASH, config=impact)
    )
    floor_best, _, path = best_of(args.repeat, lambda: floor(p["weights"], p["close"]))
    assert result is not None and path is not None
    capped = int(np.count_nonzero(np.abs(result.unfilled) > 1e-9))
    print(
        f"  run_backtest: best {best * 1e3:.1f} ms, median {np.median(times) * 1e3:.1f} ms "
        f"over {args.repeat} runs; final equity {result.equity[-1]:,.0f}, costs {result.costs.sum():,.0f}, "
        f"{capped} order cells cut by the cap"
    )
    print(
        f"  with square-root impact (k = 1, not the target's configuration): best {impact_best * 1e3:.1f} ms"
    )
    print(
        f"  plain-NumPy floor (frictionless, loop-free): best {floor_best * 1e3:.2f} ms, "
        f"final equity {path[-1]:,.0f}; ratio backtest / floor {best / floor_best:.0f}x"
    )
    print("  vectorbt Portfolio.from_orders: not run (TODO: optional bench extra, see the docstring)")
    print(f"  target <= {TARGET_SECONDS:.2f} s warm: {'met' if best <= TARGET_SECONDS else 'MISSED'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
