"""The ledger's rows: :class:`~model_code.paper.ledger.Day` to the ``paper`` tables' frames and
back (the book of a stored close, the orders and fills of a re-run), and the reconciliation.

Column names and meanings: ``sql/ddl/120_paper.sql`` and docs/data_model.md.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import polars as pl

from model_code.paper.corporate import SPLIT
from model_code.paper.ledger import Book, Day, Fill, Order, Position

CENT = 0.005  # "to the cent": within half a cent

ORDER_SCHEMA = {
    "order_id": pl.String,
    "account": pl.String,
    "as_of": pl.Date,
    "ticker": pl.String,
    "side": pl.String,
    "quantity": pl.Float64,
    "kind": pl.String,
    "target_weight": pl.Float64,
    "decision_close": pl.Float64,
    "decision_equity": pl.Float64,
    "liquidity": pl.Float64,
    "sigma": pl.Float64,
}
FILL_SCHEMA = {
    "order_id": pl.String,
    "account": pl.String,
    "date": pl.Date,
    "ticker": pl.String,
    "kind": pl.String,
    "ordered": pl.Float64,
    "split_ratio": pl.Float64,
    "quantity": pl.Float64,
    "price": pl.Float64,
    "value": pl.Float64,
    "commission": pl.Float64,
    "slippage": pl.Float64,
    "impact": pl.Float64,
}
POSITION_SCHEMA = {
    "account": pl.String,
    "date": pl.Date,
    "ticker": pl.String,
    "quantity": pl.Float64,
    "cost_basis": pl.Float64,
    "close": pl.Float64,
    "market_value": pl.Float64,
}
CASH_SCHEMA = {
    "account": pl.String,
    "date": pl.Date,
    "opening": pl.Float64,
    "traded": pl.Float64,
    "costs": pl.Float64,
    "dividends": pl.Float64,
    "cash": pl.Float64,
}
EQUITY_SCHEMA = {
    "account": pl.String,
    "date": pl.Date,
    "equity": pl.Float64,
    "cash": pl.Float64,
    "market_value": pl.Float64,
    "gross_exposure": pl.Float64,
    "peak": pl.Float64,
    "drawdown": pl.Float64,
    "hit_rate": pl.Float64,
    "halted": pl.String,
    "halt_note": pl.String,
    "n_orders": pl.Int64,
    "n_fills": pl.Int64,
}
TRADE_SCHEMA = {
    "account": pl.String,
    "date": pl.Date,
    "ticker": pl.String,
    "kind": pl.String,
    "quantity": pl.Float64,
    "price": pl.Float64,
    "amount": pl.Float64,
    "ratio": pl.Float64,
    "quantity_before": pl.Float64,
    "quantity_after": pl.Float64,
    "realized_pnl": pl.Float64,
    "order_id": pl.String,
}


@dataclass(frozen=True)
class Frames:
    orders: pl.DataFrame
    fills: pl.DataFrame
    positions: pl.DataFrame
    cash: pl.DataFrame
    equity: pl.DataFrame
    trades: pl.DataFrame


def frames(days: Sequence[Day]) -> Frames:
    """The rows of ``days`` for the six ``paper`` tables."""
    orders, fills, positions, cash, equity, trades = [], [], [], [], [], []
    for day in days:
        b = day.book
        for o in day.orders:
            orders.append(
                {
                    **{k: getattr(o, k) for k in ORDER_SCHEMA if k not in ("order_id", "side")},
                    "order_id": o.order_id,
                    "side": o.side,
                }
            )
        fills.extend(asdict(f) for f in day.fills)
        for t, p in b.positions.items():
            positions.append(
                {
                    "account": b.account,
                    "date": b.date,
                    "ticker": t,
                    "quantity": p.quantity,
                    "cost_basis": p.cost_basis,
                    "close": p.mark,
                    "market_value": p.quantity * p.mark,
                }
            )
        cash.append(
            {
                "account": b.account,
                "date": b.date,
                "opening": day.opening_cash,
                "traded": day.traded,
                "costs": day.costs,
                "dividends": day.dividends,
                "cash": b.cash,
            }
        )
        equity.append(
            {
                "account": b.account,
                "date": b.date,
                "equity": b.equity,
                "cash": b.cash,
                "market_value": b.market_value,
                "gross_exposure": b.gross_exposure,
                "peak": b.peak,
                "drawdown": b.drawdown,
                "hit_rate": day.hit_rate,
                "halted": b.halted,
                "halt_note": b.halt_note,
                "n_orders": len(day.orders),
                "n_fills": sum(1 for f in day.fills if f.quantity != 0),
            }
        )
        trades.extend(asdict(t) for t in day.trades)

    def df(rows: list[dict], schema: Mapping[str, pl.DataType]) -> pl.DataFrame:
        return pl.DataFrame(rows, schema=schema, orient="row") if rows else pl.DataFrame(schema=schema)

    return Frames(
        df(orders, ORDER_SCHEMA),
        df(fills, FILL_SCHEMA),
        df(positions, POSITION_SCHEMA),
        df(cash, CASH_SCHEMA),
        df(equity, EQUITY_SCHEMA),
        df(trades, TRADE_SCHEMA),
    )


def book_from_rows(account: str, equity_row: Mapping | None, positions: pl.DataFrame, initial: Book) -> Book:
    """The book after a stored close (``paper.equity`` row and that date's positions)."""
    if equity_row is None:
        return initial
    held = {
        r["ticker"]: Position(r["quantity"], r["cost_basis"], r["close"])
        for r in positions.sort("ticker").iter_rows(named=True)
    }
    return Book(
        account,
        equity_row["date"],
        equity_row["cash"],
        held,
        equity_row["equity"],
        equity_row["peak"],
        equity_row["halted"],
        equity_row["halt_note"],
    )


def orders_from_rows(rows: pl.DataFrame) -> list[Order]:
    """Stored ``paper.orders`` rows as :class:`Order` (their ids recompute to the stored ones)."""
    out = []
    for r in rows.sort("ticker").iter_rows(named=True):
        out.append(
            Order(
                r["as_of"],
                r["account"],
                r["ticker"],
                r["quantity"],
                r["kind"],
                r["target_weight"],
                r["decision_close"],
                _num(r["decision_equity"]),
                _num(r["liquidity"], math.inf),
                r["sigma"],
            )
        )
    return out


def fills_from_rows(rows: pl.DataFrame) -> list[Fill]:
    return [Fill(**{k: r[k] for k in FILL_SCHEMA}) for r in rows.iter_rows(named=True)]


def _num(x: float | None, default: float = math.nan) -> float:
    return default if x is None else float(x)


@dataclass(frozen=True)
class Reconciliation:
    """What :func:`reconcile` found; ``passed`` when every list is empty."""

    days: int
    cash_breaks: list[str]
    equity_breaks: list[str]
    overfilled: list[str]
    position_breaks: list[str]
    max_equity_error: float

    @property
    def passed(self) -> bool:
        return not (self.cash_breaks or self.equity_breaks or self.overfilled or self.position_breaks)


def reconcile(
    orders: pl.DataFrame,
    fills: pl.DataFrame,
    positions: pl.DataFrame,
    cash: pl.DataFrame,
    equity: pl.DataFrame,
    trades: pl.DataFrame,
    dates: Sequence[dt.date],
) -> Reconciliation:
    """Check the account's stored rows on ``dates`` (rows of one account, all dates up to them):

    * cash + sum(quantity x close) = equity, and opening + dividends - traded - costs = cash,
      each within half a cent;
    * every fill within its order: same sign, ``|quantity| <= |order quantity x split_ratio|``,
      ``ordered = order quantity x split_ratio``;
    * positions = the sum of the fills, multiplied through the splits after them.
    """
    want = set(dates)
    cash_breaks, equity_breaks, overfilled, position_breaks = [], [], [], []
    worst = 0.0
    mv = positions.group_by("date").agg(
        pl.col("market_value").sum().alias("mv"), (pl.col("quantity") * pl.col("close")).sum().alias("qc")
    )
    eq = equity.join(mv, on="date", how="left").join(cash, on="date", how="left", suffix="_cash")
    for r in eq.filter(pl.col("date").is_in(list(want))).iter_rows(named=True):
        value = r["qc"] or 0.0
        err = abs(r["cash"] + value - r["equity"])
        worst = max(worst, err)
        if err > CENT:
            equity_breaks.append(
                f"{r['date']}: cash {r['cash']:.2f} + positions {value:.2f} != equity {r['equity']:.2f}"
            )
        if r["opening"] is None:
            cash_breaks.append(f"{r['date']}: no paper.cash row")
        else:
            flow = r["opening"] + r["dividends"] - r["traded"] - r["costs"]
            if abs(flow - r["cash_cash"]) > CENT or abs(r["cash_cash"] - r["cash"]) > CENT:
                cash_breaks.append(f"{r['date']}: cash flows {flow:.2f} != cash {r['cash_cash']:.2f}")
    joined = fills.join(
        orders.select("order_id", pl.col("quantity").alias("order_qty")), on="order_id", how="left"
    )
    for r in joined.filter(pl.col("date").is_in(list(want))).iter_rows(named=True):
        if r["order_qty"] is None:
            overfilled.append(f"{r['date']} {r['ticker']}: fill without an order")
            continue
        allowed = r["order_qty"] * r["split_ratio"]
        tol = 1e-9 * max(1.0, abs(allowed))
        if (
            abs(r["ordered"] - allowed) > tol
            or abs(r["quantity"]) > abs(allowed) + tol
            or r["quantity"] * allowed < 0
        ):
            overfilled.append(f"{r['date']} {r['ticker']}: filled {r['quantity']} of {allowed}")
    # positions from the fills and splits, in date order
    held: dict[str, float] = {}
    fills_by = {d: g for (d,), g in fills.filter(pl.col("quantity") != 0).group_by("date")}
    splits_by = {d: g for (d,), g in trades.filter(pl.col("kind") == SPLIT).group_by("date")}
    pos_by = {d: g for (d,), g in positions.group_by("date")}
    for d in sorted(set(equity["date"].to_list())):
        for t, ratio in splits_by[d].select("ticker", "ratio").iter_rows() if d in splits_by else []:
            if t in held:
                held[t] *= ratio
        for t, q in fills_by[d].select("ticker", "quantity").iter_rows() if d in fills_by else []:
            held[t] = held.get(t, 0.0) + q
        if d not in want:
            continue
        stored = dict(pos_by[d].select("ticker", "quantity").iter_rows()) if d in pos_by else {}
        for t in sorted(set(stored) | {t for t, q in held.items() if q != 0}):
            a, b = stored.get(t, 0.0), held.get(t, 0.0)
            if abs(a - b) > 1e-9 * max(1.0, abs(b)):
                position_breaks.append(f"{d} {t}: position {a} != sum of fills {b}")
        held = {t: stored.get(t, q) for t, q in held.items()}  # carry the stored book forward
    return Reconciliation(len(want), cash_breaks, equity_breaks, overfilled, position_breaks, worst)
