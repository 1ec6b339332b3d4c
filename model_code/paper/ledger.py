"""The paper ledger: one account, one session at a time, on the one execution model.

A day ``T`` (:func:`step`), in this order, mirroring :func:`model_code.backtest.engine.run_backtest`:

1. corporate actions going ex at ``T`` (:mod:`model_code.paper.corporate`): a split multiplies the
   quantity held (the total cost basis is unchanged, so the basis per share is divided) and the
   shares of the orders waiting to fill; a distribution credits ``quantity x amount`` in cash;
2. the orders decided at the previous session's close fill on ``T``'s bar by
   :func:`~model_code.execution.execute` (the open, or the close where the bar has none; costs;
   the participation cap on the ADV known at the decision); an order whose ticker has no bar on
   ``T`` fills nothing; the unfilled rest expires (the next close decides afresh);
3. a held ticker without a bar on ``T`` whose last bar is earlier (delisted) is closed at its last
   close by :func:`~model_code.execution.close_delisted`, as its own order dated ``T``;
4. the book is marked at ``T``'s closes (the last known close without a bar):
   ``equity = cash + sum(quantity x mark)``;
5. the risk stops (:mod:`model_code.allocation.limits`' own rules and thresholds): the drawdown
   of the account's equity from its peak since the last reset reaching ``kill_switch_drawdown``,
   or the signals' rolling hit rate under ``min_hit_rate``, halt new orders; the halt latches
   until a reset date after the day it fired;
6. unless halted, ``T``'s target weights become orders by
   :func:`~model_code.execution.orders_from_weights` at ``T``'s equity and closes: tickers not in
   the allocation are sold, a ticker without a close on ``T`` is held.

Order ids are (date, account, ticker, side) joined by colons; a day re-run with stored fills or orders reuses
them (facts are never recomputed), so re-running a day never double-fills. Quantities are in
shares (fractional), prices and cash in the listing currency.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from model_code.allocation.limits import KILL_SWITCH, halt_note, halt_reason
from model_code.allocation.settings import RiskLimits
from model_code.allocation.state import AllocationState
from model_code.execution import (
    ExecutionConfig,
    Fills,
    close_delisted,
    execute,
    fill_prices,
    orders_from_weights,
)
from model_code.paper.corporate import DIVIDEND, SPLIT
from model_code.paper.market import Session

ACCOUNT = "paper"
REBALANCE = "rebalance"
DELISTING = "delisting"
FILL = "fill"


@dataclass(frozen=True)
class LedgerConfig:
    """Account name, starting cash, execution model, risk stops and their reset.

    ``reset``: the date a person reviewed a halt; a halt that fired on or before it is lifted
    from the next session on, and the drawdown's peak restarts there. ``stops=False`` disables
    both stops (replays compared with a backtest, which has none).
    """

    account: str = ACCOUNT
    initial_cash: float = 1_000_000.0
    execution: ExecutionConfig = field(default_factory=ExecutionConfig)
    limits: RiskLimits = field(default_factory=RiskLimits)
    reset: dt.date | None = None
    stops: bool = True

    def __post_init__(self) -> None:
        if not self.account or not self.account.strip():
            raise ValueError("account must be a non-empty name")
        if not (math.isfinite(self.initial_cash) and self.initial_cash > 0):
            raise ValueError(f"initial_cash must be > 0, got {self.initial_cash!r}")


def order_id(as_of: dt.date, account: str, ticker: str, side: str) -> str:
    """The deterministic id of the order of ``account`` on ``ticker`` decided at ``as_of``:
    readable (``2019-01-02:paper:AAPL:buy``), so an audit needs no lookup."""
    return f"{as_of.isoformat()}:{account}:{ticker}:{side}"


@dataclass(frozen=True)
class Order:
    """Signed shares to fill at the next bar (+ buy, - sell), with what sized it."""

    as_of: dt.date
    account: str
    ticker: str
    quantity: float
    kind: str = REBALANCE
    target_weight: float | None = None
    decision_close: float | None = None
    decision_equity: float = math.nan
    liquidity: float = math.inf
    sigma: float | None = None  # None: unknown (no impact charged)

    @property
    def side(self) -> str:
        return "buy" if self.quantity > 0 else "sell"

    @cached_property
    def order_id(self) -> str:
        return order_id(self.as_of, self.account, self.ticker, self.side)


@dataclass(frozen=True)
class Fill:
    """One order's execution on its fill bar. ``ordered`` is the order in the fill day's shares
    (``quantity x split_ratio``); ``|quantity| <= |ordered|``, same sign; ``price`` 0: no bar."""

    order_id: str
    account: str
    date: dt.date
    ticker: str
    kind: str
    ordered: float
    split_ratio: float
    quantity: float
    price: float
    value: float
    commission: float
    slippage: float
    impact: float

    @property
    def cost(self) -> float:
        return self.commission + self.slippage + self.impact


@dataclass(frozen=True)
class Position:
    """Shares held, their total cost basis (currency, costs included) and the mark (last close)."""

    quantity: float
    cost_basis: float
    mark: float


@dataclass(frozen=True)
class Book:
    """The account after a close."""

    account: str
    date: dt.date | None
    cash: float
    positions: Mapping[str, Position]
    equity: float
    peak: float
    halted: str | None = None
    halt_note: str | None = None

    @classmethod
    def opening(cls, config: LedgerConfig) -> Book:
        cash = float(config.initial_cash)
        return cls(config.account, None, cash, {}, cash, cash)

    @property
    def drawdown(self) -> float:
        return max(0.0, 1.0 - self.equity / self.peak) if self.peak > 0 else 0.0

    @property
    def market_value(self) -> float:
        return sum(p.quantity * p.mark for _, p in sorted(self.positions.items()))

    @property
    def gross_exposure(self) -> float:
        gross = sum(abs(p.quantity * p.mark) for _, p in sorted(self.positions.items()))
        return gross / self.equity if self.equity else math.nan


@dataclass(frozen=True)
class Trade:
    """A journal row: a fill (``fill`` / ``delisting``), a ``split`` or a ``dividend``."""

    account: str
    date: dt.date
    ticker: str
    kind: str
    quantity: float  # shares added (signed)
    price: float | None
    amount: float  # cash in (+) or out (-), costs included
    ratio: float | None
    quantity_before: float
    quantity_after: float
    realized_pnl: float | None
    order_id: str | None = None


@dataclass(frozen=True)
class Day:
    """What :func:`step` did on one date."""

    book: Book
    orders: list[Order]
    fills: list[Fill]
    trades: list[Trade]
    opening_cash: float
    traded: float  # signed currency bought (+) / sold (-)
    costs: float
    dividends: float
    trigger: str | None
    hit_rate: float | None


def _apply(pos: list[float], qty: float, value: float, cost: float) -> float | None:
    """Add a fill to ``[quantity, basis]`` (average cost); the realized P&L of what it closed."""
    q, basis = pos[0], pos[1]
    if qty == 0:
        return None
    if q == 0 or (q > 0) == (qty > 0):
        pos[0], pos[1] = q + qty, basis + value + cost
        return None
    closing = min(abs(qty), abs(q))
    share = closing / abs(qty)
    part = closing / abs(q)
    realized = -(value + cost) * share - basis * part
    pos[1] = basis * (1.0 - part)
    pos[0] = q + qty
    rest = abs(qty) - closing
    if rest > 0:  # crossed zero: the remainder opens the other side
        pos[0] = math.copysign(rest, qty)
        pos[1] = (value + cost) * (1.0 - share)
    if pos[0] == 0:
        pos[1] = 0.0
    return realized


def _halt(
    book: Book, equity: float, date: dt.date, hit_rate: float | None, config: LedgerConfig
) -> tuple[float, str | None, str | None, str | None]:
    """(peak, latched halt, its note, today's trigger)."""
    cleared = (
        config.reset is not None and date > config.reset and (book.date is None or book.date <= config.reset)
    )
    if book.date is None:
        peak = equity
    elif cleared:
        peak = max(book.equity, equity)
    else:
        peak = max(book.peak, equity)
    latched, note = (None, None) if cleared else (book.halted, book.halt_note)
    if not config.stops:
        return peak, None, None, None
    drawdown = min(max(1.0 - equity / peak, 0.0), 1.0) if peak > 0 else 0.0
    state = AllocationState(
        drawdown=drawdown, kill_switch_engaged=latched == KILL_SWITCH, rolling_hit_rate=hit_rate
    )
    trigger = halt_reason(state, config.limits)
    if trigger is not None and latched is None:
        latched, note = trigger, f"{date.isoformat()}: {halt_note(trigger, state, config.limits)}"
    return peak, latched, note, trigger


def step(
    book: Book,
    pending: Sequence[Order],
    session: Session,
    weights: Mapping[str, float] | None,
    config: LedgerConfig,
    *,
    hit_rate: float | None = None,
    stored_fills: Sequence[Fill] | None = None,
    stored_orders: Sequence[Order] | None = None,
) -> Day:
    """One session of the account (see the module docstring for the order of events).

    Args:
        book: the account after the previous processed close (:meth:`Book.opening` at the start).
        pending: the orders decided at that close.
        session: the day's bars and what is known at its close.
        weights: the day's target weights per ticker (``CASH`` and tickers not listed: 0);
            None: no allocation that day, hold.
        hit_rate: the signals' rolling hit rate known at the close (None: too few scored).
        stored_fills, stored_orders: the day's fills / orders already recorded (a re-run);
            they are used as they are instead of being computed again.
    """
    date = session.date
    account = config.account
    if book.date is not None and date <= book.date:
        raise ValueError(f"{date} is not after the account's last session {book.date}")
    pos = {t: [p.quantity, p.cost_basis, p.mark] for t, p in book.positions.items()}
    cash = opening = book.cash
    trades: list[Trade] = []
    dividends = 0.0

    # 1. corporate actions on the shares held at the previous close
    for ticker, act in sorted(session.actions.items()):
        held = pos.get(ticker)
        if held is None or held[0] == 0:
            continue
        if act.kind == SPLIT:
            before = held[0]
            held[0] = before * act.ratio
            held[2] = held[2] / act.ratio
            trades.append(
                Trade(
                    account,
                    date,
                    ticker,
                    SPLIT,
                    held[0] - before,
                    None,
                    0.0,
                    act.ratio,
                    before,
                    held[0],
                    None,
                )
            )
        elif act.kind == DIVIDEND:
            amount = held[0] * act.amount
            cash += amount
            dividends += amount
            trades.append(
                Trade(account, date, ticker, DIVIDEND, 0.0, act.amount, amount, None, held[0], held[0], None)
            )

    # 2.-3. fills of the pending orders, then the delistings' closes
    fills: list[Fill]
    delist_orders: list[Order] = []
    if stored_fills:
        fills = sorted(stored_fills, key=lambda f: (f.kind != REBALANCE, f.ticker))
        delist_orders = [o for o in (stored_orders or []) if o.kind == DELISTING]
    else:
        fills = _fill_pending(pending, session, config)
        gone = sorted(t for t, p in pos.items() if p[0] != 0 and session.delisted(t))
        if gone:
            shares = np.array([pos[t][0] for t in gone])
            last = np.array([pos[t][2] for t in gone])
            done = close_delisted(shares, last, config.execution)
            for i, ticker in enumerate(gone):
                order = Order(
                    date, account, ticker, -float(shares[i]), DELISTING, 0.0, float(last[i]), book.equity
                )
                delist_orders.append(order)
            fills.extend(_fill_rows(delist_orders, date, [1.0] * len(gone), done))
    traded = costs = 0.0
    for f in fills:
        if f.quantity == 0:
            continue
        held = pos.setdefault(f.ticker, [0.0, 0.0, f.price])
        before = held[0]
        realized = _apply(held, f.quantity, f.value, f.cost)
        cash -= f.value + f.cost
        traded += f.value
        costs += f.cost
        trades.append(
            Trade(
                account,
                date,
                f.ticker,
                FILL if f.kind == REBALANCE else DELISTING,
                f.quantity,
                f.price,
                -(f.value + f.cost),
                None,
                before,
                held[0],
                realized,
                f.order_id,
            )
        )

    # 4. mark at the close
    for ticker, held in pos.items():
        close = session.close.get(ticker)
        if close is not None:
            held[2] = close
    positions = {t: Position(p[0], p[1], p[2]) for t, p in sorted(pos.items()) if p[0] != 0}
    equity = cash + sum(p.quantity * p.mark for p in positions.values())

    # 5. risk stops
    peak, halted, note, trigger = _halt(book, equity, date, hit_rate, config)
    after = Book(account, date, cash, positions, equity, peak, halted, note)

    # 6. the day's orders
    if stored_orders is not None and any(o.kind == REBALANCE for o in stored_orders):
        orders = [o for o in stored_orders if o.kind == REBALANCE]  # placed already: a fact
    elif halted is not None:
        orders: list[Order] = []
    elif weights is None:
        orders = []
    else:
        orders = _orders(after, session, weights, config)
    return Day(
        after, [*delist_orders, *orders], fills, trades, opening, traded, costs, dividends, trigger, hit_rate
    )


def _fill_rows(orders: Sequence[Order], date: dt.date, ratios: Sequence[float], done: Fills) -> list[Fill]:
    """The :class:`Fill` rows of one execute call over ``orders`` (same order)."""
    cols = zip(
        done.ordered.tolist(),
        done.filled.tolist(),
        done.price.tolist(),
        done.value.tolist(),
        done.commission.tolist(),
        done.slippage.tolist(),
        done.impact.tolist(),
        strict=True,
    )
    return [
        Fill(o.order_id, o.account, date, o.ticker, o.kind, q, float(r), f, p, v, c, s, i)
        for o, r, (q, f, p, v, c, s, i) in zip(orders, ratios, cols, strict=True)
    ]


def _fill_pending(pending: Sequence[Order], session: Session, config: LedgerConfig) -> list[Fill]:
    """Fill the orders of the previous close on today's bar (split-adjusted), one execute call."""
    todo = sorted((o for o in pending if o.kind == REBALANCE), key=lambda o: o.ticker)
    if not todo:
        return []
    ratio = np.array([_ratio(session, o.ticker) for o in todo])
    qty = np.array([o.quantity for o in todo]) * ratio
    nan = math.nan
    price = fill_prices(
        np.array([session.open.get(o.ticker, nan) for o in todo]),
        np.array([session.close.get(o.ticker, nan) for o in todo]),
    )
    liquidity = np.array([o.liquidity for o in todo]) * ratio
    sigma = np.array([math.nan if o.sigma is None else o.sigma for o in todo])
    done = execute(qty, price, liquidity, sigma, config.execution)
    return _fill_rows(todo, session.date, ratio.tolist(), done)


def _ratio(session: Session, ticker: str) -> float:
    act = session.actions.get(ticker)
    return act.ratio if act is not None and act.kind == SPLIT else 1.0


def _orders(book: Book, session: Session, weights: Mapping[str, float], config: LedgerConfig) -> list[Order]:
    """Target weights to share orders at the close (CASH is the remainder, never an order)."""
    tickers = sorted((set(weights) | set(book.positions)) - {"CASH"})
    if not tickers:
        return []
    w = np.array([float(weights.get(t, 0.0)) for t in tickers])
    close = np.array([session.close.get(t, math.nan) for t in tickers])
    w = np.where(np.isfinite(close) | np.isnan(w), w, np.nan)  # no close today: hold
    shares = np.array([book.positions[t].quantity if t in book.positions else 0.0 for t in tickers])
    qty = orders_from_weights(w, shares, book.equity, close)
    out = []
    for i in np.flatnonzero(qty != 0):
        t = tickers[i]
        out.append(
            Order(
                book.date,  # type: ignore[arg-type]
                config.account,
                t,
                float(qty[i]),
                REBALANCE,
                float(w[i]),
                float(close[i]),
                book.equity,
                session.liquidity.get(t, 0.0),
                _known(session.sigma.get(t)),
            )
        )
    return out


def _known(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None
