"""Backtester speed: the daily-rebalanced target-weight backtest of the shared panel, in process.

The accepted bars of the shared file (``load_clean_bars``: 401 of its 402 tickers keep bars) are
pivoted, untimed, into date x ticker panels of split/dividend-adjusted opens and closes and
volume (shares, adjusted so ``close * volume`` is the raw dollar volume). The weights are 1/N
over the tickers with a close, decided at every close. Timed: ``run_backtest`` with the defaults
(5 + 5 bps, next-bar fills, 10 % participation cap), best of ``--repeat`` after one untimed
warm-up run (no JIT: the warm-up only loads caches); beside it, in the same run, a plain-NumPy
floor: the same weights' frictionless close-to-close return path, loop-free
(``cumprod(1 + sum(w[t-1] * r[t]))``), best of ``--repeat``.

Then, in the same run, vectorbt's ``Portfolio.from_orders`` on the same weights
(``benchmarks/vectorbt_from_orders.py``, run by the interpreter of ``.venv-bench``, the venv
``make bench-venv`` makes: today's vectorbt pins pandas >= 3, which clashes with ours). Its inputs
are prepared here, untimed, to mean what ours do: the weight decided at close t-1 as the target
percent on bar t, filled at the open (else the close), sized at the previous close
(``val_price=-inf``), 10 bps proportional fee on the fill notional (our 5 + 5 bps: both are
charged on notional, neither moves the price), ``max_size`` = 10 % of the trailing ADV in shares
known at t-1 (our cap), a delisted ticker closed at its last close the bar after. Its time is the
best of ``--vectorbt-repeat`` after one untimed call that compiles its numba kernels (excluded);
ours has no JIT. Final equities are compared with the cap and, in one more run each, without it.
Without ``.venv-bench`` (or vectorbt in it) the line says so and the rest runs.

    python -m benchmarks.backtest [--parquet PATH] [--repeat 20] [--vectorbt-repeat 5]

Target (issue 11): <= 0.05 s warm for the 402 x 1,259 panel.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl

from benchmarks import DEFAULT_PARQUET
from model_code.backtest.engine import forward_filled, run_backtest
from model_code.evaluation.clean_bars import load_clean_bars
from model_code.execution import ExecutionConfig, adv_shares, fill_prices, trailing_adv

TARGET_SECONDS = 0.05
INITIAL_CASH = 10_000_000.0
ROOT = Path(__file__).resolve().parents[1]
BENCH_PYTHON = ROOT / ".venv-bench" / "bin" / "python"
VECTORBT_WORKER = Path(__file__).with_name("vectorbt_from_orders.py")


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


def vectorbt_inputs(p: dict[str, np.ndarray], config: ExecutionConfig) -> dict[str, np.ndarray]:
    """The same weights, prices and cap as vectorbt ``from_orders`` arrays (see the docstring):
    row t holds what fills on bar t, decided at close t-1."""
    weights, open_, close, volume = p["weights"], p["open_"], p["close"], p["volume"]
    n, m = close.shape
    price = fill_prices(open_, close)
    size = np.full((n, m), np.nan)
    size[1:] = weights[:-1]
    liquidity = adv_shares(trailing_adv(close, volume, config.window), close)
    max_size = np.full((n, m), np.inf)
    if config.participation_cap is not None:
        max_size[1:] = config.participation_cap * liquidity[:-1]
    has = np.isfinite(close)
    last_bar = n - 1 - np.argmax(has[::-1], axis=0)
    for col in np.flatnonzero(has.any(axis=0) & (last_bar < n - 1)):  # delisted: close it all
        row = int(last_bar[col]) + 1
        price[row, col], size[row, col], max_size[row, col] = close[row - 1, col], 0.0, np.inf
    # no bar, or (under the cap) no ADV known: ours fills nothing there, so vectorbt gets no order
    # (its max_size must be > 0); the uncapped run needs the bar and a close before it (the
    # sizing price; before a ticker's first close its weight is 0 and there is nothing to sell)
    mark = forward_filled(close)
    known = np.zeros((n, m), dtype=bool)
    known[1:] = mark[:-1] > 0
    size_free = np.where(np.isfinite(price) & known, size, np.nan)
    tradable = np.isfinite(price) & (max_size > 0)
    size = np.where(tradable, size, np.nan)
    max_size = np.where(tradable, max_size, np.inf)
    return {
        "size": size,
        "size_uncapped": size_free,
        "price": price,
        "close": mark,
        "max_size": max_size,
        "init_cash": np.float64(INITIAL_CASH),
        "fees": np.float64(config.costs.per_side_bps * 1e-4),
    }


def run_vectorbt(inputs: dict[str, np.ndarray], repeat: int, python: Path) -> dict[str, object]:
    """vectorbt's timings and final values from its own venv, or ``{"error": why}``."""
    if not python.exists():
        shown = python.relative_to(ROOT) if python.is_relative_to(ROOT) else python
        return {"error": f"no {shown} (make bench-venv makes it)"}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "panels.npz"
        np.savez(path, **inputs)
        done = subprocess.run(
            [str(python), str(VECTORBT_WORKER), str(path), "--repeat", str(repeat)],
            capture_output=True,
            text=True,
            timeout=900,
        )
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        return {"error": f"exit {done.returncode}: {done.stderr.strip()[-400:]}"}
    return json.loads(lines[-1])


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
    parser.add_argument("--vectorbt-repeat", type=int, default=5)
    parser.add_argument("--vectorbt-python", type=Path, default=BENCH_PYTHON)
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
    uncapped = run_backtest(**p, initial_cash=INITIAL_CASH, config=ExecutionConfig(participation_cap=None))
    vbt = run_vectorbt(vectorbt_inputs(p, ExecutionConfig()), args.vectorbt_repeat, args.vectorbt_python)
    if "error" in vbt:
        print(f"  vectorbt Portfolio.from_orders: not run ({vbt['error']})")
    else:
        ours, theirs = result.equity[-1], float(vbt["final_value"])
        ours_free, theirs_free = uncapped.equity[-1], float(vbt["final_value_uncapped"])
        print(
            f"  vectorbt {vbt['version']} Portfolio.from_orders (targetpercent, same weights, fills, "
            f"costs and cap): best {vbt['best_s'] * 1e3:.0f} ms, median {vbt['median_s'] * 1e3:.0f} ms over "
            f"{vbt['repeat']} runs with value(), from_orders alone {vbt['from_orders_best_s'] * 1e3:.0f} ms; "
            f"first call (numba JIT, excluded) {vbt['first_call_s']:.1f} s"
        )
        print(
            f"    ratio vectorbt / run_backtest {vbt['best_s'] / best:.1f}x; final equity vectorbt "
            f"{theirs:,.0f} vs ours {ours:,.0f} ({(theirs / ours - 1) * 1e4:+.1f} bps); without the cap "
            f"{theirs_free:,.0f} vs {ours_free:,.0f} ({(theirs_free / ours_free - 1) * 1e4:+.1f} bps)"
        )
    print(f"  target <= {TARGET_SECONDS:.2f} s warm: {'met' if best <= TARGET_SECONDS else 'MISSED'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
