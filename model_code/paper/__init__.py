"""The paper-trading ledger (no Dagster): orders from target weights, fills by the one
execution model (:mod:`model_code.execution`), corporate actions derived from the bars, risk
stops, and the reconciliation against the vectorized backtest. See docs/paper.md."""

from model_code.paper.ledger import (
    ACCOUNT,
    Book,
    Day,
    Fill,
    LedgerConfig,
    Order,
    Position,
    Trade,
    order_id,
    step,
)
from model_code.paper.market import Session, Tape, build_tape
from model_code.paper.replay import Replay, backtest_equity, replay, weights_by_date

__all__ = [
    "ACCOUNT",
    "Book",
    "Day",
    "Fill",
    "LedgerConfig",
    "Order",
    "Position",
    "Replay",
    "Session",
    "Tape",
    "Trade",
    "backtest_equity",
    "build_tape",
    "order_id",
    "replay",
    "step",
    "weights_by_date",
]
