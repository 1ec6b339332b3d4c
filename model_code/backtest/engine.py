"""The vectorized backtester: daily target weights over a date x ticker panel, filled by the one
execution model (:mod:`model_code.execution`) that the paper ledger also calls.

Inputs are ``(n_days, n_tickers)`` float arrays in session order: target weights decided at each
close (fraction of equity, signed; NaN = no decision, hold), open and close prices (NaN where the
bar or the open is missing; pass split-adjusted prices), and volume in shares. A ticker whose last
bar comes before the panel's last row is delisted: the day after its last bar its position is
closed at its last close.

Each day ``t``: the orders decided at close ``t-1`` fill at bar ``t`` (open, else close); delisted
positions are closed; the book is marked at the close (last known close for a ticker without a
bar that day) into ``equity[t] = cash[t] + sum(shares[t] * close[t])``, exactly; the weights of
row ``t`` become share orders at that equity and close. Nothing on row ``t`` uses a later row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from model_code.costs import BPS
from model_code.execution import (
    ExecutionConfig,
    adv_shares,
    fill,
    fill_limits,
    fill_prices,
    impact_rates,
    orders_from_factors,
    sizing_factors,
    trailing_adv,
    trailing_volatility,
)


@dataclass
class BacktestResult:
    """Daily series (``(n_days,)``) and per-ticker panels (``(n_days, n_tickers)``) of one run.

    Fill panels are indexed by the bar the fill happened on (decided the close before, or the same
    close in same-bar mode); a delisted ticker's position is closed on the row after its last bar,
    at its last close, and that close replaces the ticker's order there. Panels other than
    ``positions``, ``orders`` and ``filled`` are derived on first access (cached), with the same
    arithmetic as :func:`~model_code.execution.execute`.

    Attributes:
        equity, cash: currency at each close; ``equity = cash + sum(positions * mark)``.
        positions: shares held after each close's fills.
        gross_exposure: ``sum |positions * mark| / equity``.
        turnover: traded notional on the day / equity at the previous close (initial cash on day 0).
        costs: currency paid on the day (commission + slippage + impact).
        orders, filled: signed shares asked to fill on each bar, and filled.
        fill_prices: the fill price each row's orders would get (NaN: no bar); delisting rows hold
            the last close.
        delisted_after: row of each ticker's last bar where it is delisted, else -1.
        warnings: what the run warned about (same-bar fills), for every report that uses it.
    """

    equity: np.ndarray
    cash: np.ndarray
    positions: np.ndarray
    gross_exposure: np.ndarray
    turnover: np.ndarray
    costs: np.ndarray
    orders: np.ndarray
    filled: np.ndarray
    fill_prices: np.ndarray
    impact: np.ndarray
    close: np.ndarray
    config: ExecutionConfig
    delisted_after: np.ndarray
    warnings: tuple[str, ...] = ()

    @property
    def returns(self) -> np.ndarray:
        """Daily simple returns of equity from one close to the next (n_days - 1 values)."""
        return self.equity[1:] / self.equity[:-1] - 1.0

    @property
    def drawdown(self) -> np.ndarray:
        """``equity / running max - 1`` (<= 0)."""
        return self.equity / np.maximum.accumulate(self.equity) - 1.0

    @cached_property
    def mark(self) -> np.ndarray:
        """The close each position is valued at: the last known close (0 before a ticker's first)."""
        return forward_filled(self.close)

    @cached_property
    def unfilled(self) -> np.ndarray:
        """Shares ordered and not filled (participation cap, or no bar to fill at)."""
        return self.orders - self.filled

    @cached_property
    def value(self) -> np.ndarray:
        """Signed currency traded per ticker and bar, ``filled * fill price``."""
        ref = self.fill_prices
        return self.filled * np.where(np.isfinite(ref), ref, 0.0)

    @cached_property
    def fill_price(self) -> np.ndarray:
        """The price of each fill (NaN where nothing filled)."""
        return np.where(self.filled != 0, self.fill_prices, np.nan)

    @cached_property
    def commission(self) -> np.ndarray:
        return np.abs(self.value) * (self.config.costs.commission_bps * BPS)

    @cached_property
    def slippage(self) -> np.ndarray:
        return np.abs(self.value) * (self.config.costs.slippage_bps * BPS)


def run_backtest(
    weights: np.ndarray,
    open_: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
    *,
    initial_cash: float = 1_000_000.0,
    config: ExecutionConfig | None = None,
    allow_hold: bool = True,
    tickers: Sequence[str] | None = None,
) -> BacktestResult:
    """Backtest ``weights`` decided at each close; see the module docstring for the timing.

    Args:
        weights: target weights per row (fraction of equity at that close); NaN holds.
        open_, close: prices (> 0 where present, NaN where missing).
        volume: shares traded per bar (>= 0; NaN where missing); sets the trailing ADV.
        initial_cash: currency at the start (> 0), all in cash.
        config: the execution model's settings (defaults: next bar, 5 + 5 bps, 10 % of ADV).
        allow_hold: False refuses NaN weights on a ticker that has a close that day.
        tickers: names for error messages.

    Raises:
        ValueError: shapes differ, a price is <= 0 or infinite, a volume negative, a weight
            infinite, a non-zero weight on a ticker without a close that day, an open without a
            close, a NaN weight where ``allow_hold`` is False, or the cash is not > 0.
    """
    config = config or ExecutionConfig()
    _check_inputs(weights, open_, close, volume, initial_cash, allow_hold, tickers)
    note = config.warn_if_same_bar()
    n, m = close.shape
    has_bar = np.isfinite(close)
    ref = close.copy() if config.same_bar else fill_prices(open_, close)
    # What is known at each close, for the orders decided there.
    liquidity = adv_shares(trailing_adv(close, volume, config.window), close)
    sigma = trailing_volatility(close, config.window) if config.impact_k > 0 else None
    lag = 0 if config.same_bar else 1
    # A delisted ticker: on the row after its last bar its order becomes "close it all", filled
    # at its last close with unlimited liquidity (close_delisted's terms, inside the day's call).
    last_bar = n - 1 - np.argmax(has_bar[::-1], axis=0)
    delisted_after = np.where(has_bar.any(axis=0) & (last_bar < n - 1), last_bar, -1)
    delistings: dict[int, np.ndarray] = {}
    for col in np.flatnonzero(delisted_after >= 0):
        row = int(delisted_after[col]) + 1
        ref[row, col] = close[row - 1, col]
        liquidity[row - lag, col] = np.inf
        delistings.setdefault(row, np.empty(0, dtype=np.intp))
        delistings[row] = np.append(delistings[row], col)

    # Every day's preparations at once (the execution model's own functions, any shape); row
    # t - lag of limit / rates serves the fills on bar t.
    limit = fill_limits(ref[lag:], liquidity[: n - lag], config)
    rates = None if sigma is None else impact_rates(liquidity[: n - lag], sigma[: n - lag], config)
    px = np.where(np.isfinite(ref), ref, 0.0)
    factors = sizing_factors(weights, close)

    orders_panel = np.zeros((n, m))
    filled_panel = np.zeros((n, m))
    impact_panel = np.zeros((n, m))
    positions = np.empty((n, m))
    equity, cash_path = np.empty(n), np.empty(n)
    gross, traded, paid = np.zeros(n), np.zeros(n), np.zeros(n)
    shares = np.zeros(m)
    mark = np.zeros(m)  # last known close, carried forward
    cash = float(initial_cash)
    pending = np.zeros(m)
    for t in range(n):
        np.copyto(mark, close[t], where=has_bar[t])
        if not lag:
            pending = orders_from_factors(factors[t], shares, cash + float(shares @ mark))
        gone = delistings.get(t)
        if gone is not None:
            pending[gone] = -shares[gone]
        if t >= lag:  # next-bar: the orders of close t-1 fill on bar t; same-bar: at close t
            fills = fill(pending, px[t], limit[t - lag], config, None if rates is None else rates[t - lag])
            orders_panel[t] = pending
            filled_panel[t] = fills.filled
            if rates is not None:
                impact_panel[t] = fills.impact
            shares = shares + fills.filled
            cash += fills.cash_delta
            traded[t], paid[t] = fills.traded, fills.paid
        value = float(shares @ mark)
        equity[t] = cash + value
        cash_path[t] = cash
        positions[t] = shares
        gross[t] = float(np.abs(shares) @ mark)
        if lag:
            pending = orders_from_factors(factors[t], shares, equity[t])
    before = np.concatenate(([initial_cash], equity[:-1]))
    return BacktestResult(
        equity=equity,
        cash=cash_path,
        positions=positions,
        gross_exposure=gross / equity,
        turnover=traded / before,
        costs=paid,
        orders=orders_panel,
        filled=filled_panel,
        fill_prices=ref,
        impact=impact_panel,
        close=close,
        config=config,
        delisted_after=delisted_after,
        warnings=() if note is None else (note,),
    )


def forward_filled(close: np.ndarray) -> np.ndarray:
    """Last known close per row (0 before a ticker's first bar)."""
    n = close.shape[0]
    idx = np.where(np.isfinite(close), np.arange(n)[:, None], -1)
    np.maximum.accumulate(idx, axis=0, out=idx)
    out = np.take_along_axis(close, np.maximum(idx, 0), axis=0)
    return np.where(idx >= 0, out, 0.0)


def _check_inputs(
    weights: np.ndarray,
    open_: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
    initial_cash: float,
    allow_hold: bool,
    tickers: Sequence[str] | None,
) -> None:
    """Refuse inputs the backtest cannot account for, naming the array, row and ticker."""
    arrays = {"weights": weights, "open": open_, "close": close, "volume": volume}
    for name, arr in arrays.items():
        if not isinstance(arr, np.ndarray) or arr.ndim != 2 or arr.dtype.kind != "f":
            raise ValueError(f"{name} must be a 2-D float array (days x tickers), got {_describe(arr)}")
    shapes = {name: arr.shape for name, arr in arrays.items()}
    if len(set(shapes.values())) != 1:
        raise ValueError(f"shape mismatch: {', '.join(f'{k} {v}' for k, v in shapes.items())}")
    n, m = close.shape
    if n == 0 or m == 0:
        raise ValueError(f"empty panel: {n} days x {m} tickers")
    if tickers is not None and len(tickers) != m:
        raise ValueError(f"{len(tickers)} tickers named for {m} columns")
    if not (np.isfinite(initial_cash) and initial_cash > 0):
        raise ValueError(f"initial_cash must be a finite number > 0, got {initial_cash!r}")

    def where(name: str, bad: np.ndarray, what: str) -> None:
        if bad.any():
            r, c = np.argwhere(bad)[0]
            label = tickers[c] if tickers is not None else f"column {c}"
            raise ValueError(f"{name}: {int(bad.sum())} {what}, first at row {r}, {label}")

    for name in ("open", "close"):
        arr = arrays[name]
        where(name, np.isinf(arr) | (arr <= 0), "prices not > 0 (or infinite)")
    where("volume", np.isinf(volume) | (volume < 0), "volumes negative (or infinite)")
    where("open", np.isfinite(open_) & ~np.isfinite(close), "opens without a close on the same bar")
    where("weights", np.isinf(weights), "infinite weights")
    where(
        "weights",
        (weights != 0) & np.isfinite(weights) & ~np.isfinite(close),
        "non-zero weights without a close",
    )
    if not allow_hold:
        where("weights", np.isnan(weights) & np.isfinite(close), "NaN weights (allow_hold=False)")


def _describe(arr: object) -> str:
    if isinstance(arr, np.ndarray):
        return f"{arr.ndim}-D {arr.dtype} array"
    return type(arr).__name__
