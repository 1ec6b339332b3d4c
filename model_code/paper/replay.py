"""The ledger replayed in memory over stored bars and allocations, and the vectorized backtest
of the same allocations it is compared with (the reconciliation's drift, the acceptance test).

:func:`replay` chains :func:`~model_code.paper.ledger.step` exactly as the ``paper`` assets do
night after night (without the warehouse); :func:`backtest_equity` runs
:func:`~model_code.backtest.engine.run_backtest` on the backtest asset's own panel
(:func:`~model_code.backtest.runs.price_panel`: split- and dividend-adjusted prices) and weights
(:func:`~model_code.backtest.runs.strategy_weights`). On bars without corporate actions the two
agree to float round-off; a distribution is cash in the ledger but a higher adjusted price in the
backtest, which also shifts the next fill and its costs a little (docs/paper.md).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import polars as pl

from model_code.allocation.allocate import CASH
from model_code.backtest.engine import run_backtest
from model_code.backtest.runs import NO_VOLUME_SHARES, price_panel, strategy_weights
from model_code.execution import ExecutionConfig
from model_code.paper.ledger import Book, Day, LedgerConfig, step
from model_code.paper.market import Tape, build_tape


@dataclass(frozen=True)
class Replay:
    """Every processed day, in order, and the account's equity per date."""

    days: list[Day]

    @property
    def dates(self) -> list[dt.date]:
        return [d.book.date for d in self.days]  # type: ignore[misc]

    @property
    def equity(self) -> np.ndarray:
        return np.array([d.book.equity for d in self.days])


def weights_by_date(allocations: pl.DataFrame) -> dict[dt.date, dict[str, float]]:
    """``portfolio.allocations`` rows as ``{as_of: {ticker: weight}}`` (CASH left out)."""
    out: dict[dt.date, dict[str, float]] = {}
    for as_of, ticker, weight in allocations.select("as_of", "ticker", "weight").iter_rows():
        day = out.setdefault(as_of, {})
        if ticker != CASH:
            day[ticker] = float(weight)
    return out


def replay(
    bars: pl.DataFrame,
    allocations: pl.DataFrame,
    config: LedgerConfig,
    *,
    start: dt.date,
    end: dt.date,
    tape: Tape | None = None,
    hit_rate: Callable[[dt.date], float | None] | None = None,
) -> Replay:
    """The account from ``start`` (all cash) to ``end``, one :func:`step` per date with bars.

    ``bars`` should start ``config.execution.window`` sessions before ``start`` so the ADV known
    at the first decision is the one the backtest knows.
    """
    tape = tape or build_tape(bars, config.execution)
    targets = weights_by_date(allocations)
    book = Book.opening(config)
    pending: list = []
    days = []
    for date in tape.dates:
        if date < start or date > end:
            continue
        day = step(
            book,
            pending,
            tape.session(date),
            targets.get(date),
            config,
            hit_rate=hit_rate(date) if hit_rate else None,
        )
        days.append(day)
        book, pending = day.book, day.orders
    return Replay(days)


def backtest_equity(
    allocations: pl.DataFrame,
    bars: pl.DataFrame,
    *,
    start: dt.date,
    end: dt.date,
    config: ExecutionConfig,
    initial_cash: float,
) -> Mapping[dt.date, float]:
    """Daily equity of the vectorized backtest of ``allocations`` made from ``start`` on, all in
    cash until ``start``'s close; ``bars`` may start earlier (warm-up for the ADV)."""
    panel = price_panel(bars, bars["date"].min(), end)
    chosen = allocations.filter(pl.col("as_of").is_between(start, end))
    weights = strategy_weights(chosen, panel)
    first = next((i for i, d in enumerate(panel.dates) if d >= start), len(panel.dates))
    weights[:first] = np.nan
    no_volume = ~np.isfinite(panel.volume).any(axis=0)
    volume = np.where(no_volume[None, :] & np.isfinite(panel.close), NO_VOLUME_SHARES, panel.volume)
    result = run_backtest(
        weights,
        panel.open,
        panel.close,
        volume,
        initial_cash=initial_cash,
        config=config,
        tickers=panel.tickers,
    )
    return {d: float(e) for d, e in zip(panel.dates[first:], result.equity[first:], strict=True)}
