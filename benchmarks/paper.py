"""Paper ledger replay: the account over 2019 on the shared tickers, beside the vectorized
backtest of the same allocations (issue 13's acceptance).

Untimed: the accepted bars of the shared file (``load_clean_bars``) from 2018-11-01 (warm-up for
the 20-session ADV) to 2019-12-31, and a deterministic pseudo-random target-weight panel: every
2019 session, each ticker with a bar gets ``u / sum(u) x 0.9`` (``u`` uniform, seed 2019), 10 % cash.
Timed: :func:`model_code.paper.replay` (day by day, :func:`model_code.paper.step`: orders, next-bar
fills by the execution model, delistings, marks; no warehouse) and
:func:`model_code.paper.backtest_equity` (``run_backtest`` on the backtest asset's panel). Two
views of the bars:

* ``price_only``: ``adj_close`` set to ``close``, so no corporate action is derived and the ledger
  and the backtest trade identical prices: their daily equities must agree to 1e-9 relative;
* ``with_dividends``: the bars as stored; the ledger credits the distributions it derives as cash
  while the backtest trades dividend-adjusted prices, so they drift apart by a little (printed).

    python -m benchmarks.paper [--parquet PATH]

Target (issue 13): the replay <= 30 s.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
from dataclasses import dataclass

import numpy as np
import polars as pl

from benchmarks import DEFAULT_PARQUET
from model_code.evaluation.clean_bars import load_clean_bars
from model_code.paper import LedgerConfig, backtest_equity, replay

TARGET_SECONDS = 30.0
WARM_UP = dt.date(2018, 11, 1)
START, END = dt.date(2019, 1, 1), dt.date(2019, 12, 31)
CASH_WEIGHT = 0.1


@dataclass(frozen=True)
class Comparison:
    view: str
    days: int
    tickers: int
    replay_seconds: float
    backtest_seconds: float
    max_relative_gap: float
    final_equity: float
    final_backtest_equity: float
    delistings: int
    dividends: float


def load_bars(path: str) -> pl.DataFrame:
    return load_clean_bars(path, start=WARM_UP, end=END).bars


def target_weights(bars: pl.DataFrame, seed: int = 2019) -> pl.DataFrame:
    """``portfolio.allocations``-shaped rows: every session in 2019, every ticker with a bar."""
    rng = np.random.default_rng(seed)
    has = bars.filter(pl.col("date").is_between(START, END)).select("date", "ticker").sort("date", "ticker")
    risky = (
        has.with_columns(u=pl.Series(rng.random(has.height)))
        .with_columns(weight=pl.col("u") / pl.col("u").sum().over("date") * (1.0 - CASH_WEIGHT))
        .select(pl.col("date").alias("as_of"), "ticker", "weight")
    )
    sessions = risky["as_of"].unique().sort()
    cash = pl.DataFrame({"as_of": sessions, "ticker": "CASH", "weight": CASH_WEIGHT})
    return pl.concat([risky, cash])


def compare(view: str, bars: pl.DataFrame, allocations: pl.DataFrame) -> Comparison:
    """Replay the ledger and backtest the same allocations; their daily gap."""
    config = LedgerConfig(stops=False)  # the backtest has no stops
    start = allocations["as_of"].min()
    t0 = time.perf_counter()
    run = replay(bars, allocations, config, start=start, end=END)
    t1 = time.perf_counter()
    bench = backtest_equity(
        allocations, bars, start=start, end=END, config=config.execution, initial_cash=config.initial_cash
    )
    t2 = time.perf_counter()
    if run.dates != sorted(bench):
        raise AssertionError("the ledger and the backtest processed different sessions")
    other = np.array([bench[d] for d in run.dates])
    return Comparison(
        view=view,
        days=len(run.dates),
        tickers=bars["ticker"].n_unique(),
        replay_seconds=t1 - t0,
        backtest_seconds=t2 - t1,
        max_relative_gap=float(np.max(np.abs(run.equity / other - 1.0))),
        final_equity=float(run.equity[-1]),
        final_backtest_equity=float(other[-1]),
        delistings=sum(1 for d in run.days for f in d.fills if f.kind == "delisting"),
        dividends=float(sum(d.dividends for d in run.days)),
    )


def views(bars: pl.DataFrame) -> dict[str, pl.DataFrame]:
    return {"price_only": bars.with_columns(adj_close=pl.col("close")), "with_dividends": bars}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parquet", default=str(DEFAULT_PARQUET))
    args = parser.parse_args()
    bars = load_bars(args.parquet)
    allocations = target_weights(bars)
    for view, frame in views(bars).items():
        c = compare(view, frame, allocations)
        verdict = "ok" if c.replay_seconds <= TARGET_SECONDS else "SLOW"
        print(json.dumps({**c.__dict__, "target_seconds": TARGET_SECONDS, "verdict": verdict}))


if __name__ == "__main__":
    main()
