"""One entry point from signals to target weights: the rows of ``portfolio.allocations``.

:func:`allocate` reads the ``signals.daily`` rows of ``as_of`` (``model_code.signals.router``
SIGNAL_SCHEMA), sizes the BUY names with the chosen method on the returns window up to ``as_of``
(daily LOG returns, :mod:`model_code.allocation.history`), applies the risk limits
(:mod:`model_code.allocation.limits`) and returns one row per signal ticker (and per safe-sleeve
name), plus a ``CASH`` row so the weights sum to 1. Long only: SELL and HOLD mean no position.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping

import numpy as np
import polars as pl

from model_code.allocation import methods
from model_code.allocation.history import estimation_window, market_vol_annual
from model_code.allocation.limits import NONE, enforce, halt_note, halt_reason
from model_code.allocation.methods import MethodResult
from model_code.allocation.settings import METHODS, AllocationSettings, Method
from model_code.allocation.state import AllocationState

CASH = "CASH"
ALLOCATION_SCHEMA: dict[str, pl.DataType] = {
    "as_of": pl.Date(),
    "ticker": pl.String(),
    "weight": pl.Float64(),
    "sleeve": pl.String(),
    "method": pl.String(),
    "method_used": pl.String(),
    "fallback_reason": pl.String(),
    "reason": pl.String(),
    "binding_limit": pl.String(),
}


def allocate(
    as_of: dt.date,
    signals: pl.DataFrame,
    returns_history: pl.DataFrame,
    *,
    method: Method,
    settings: AllocationSettings,
    previous_weights: Mapping[str, float] | None = None,
    state: AllocationState,
) -> pl.DataFrame:
    """Target weights at the close of ``as_of`` (:data:`ALLOCATION_SCHEMA`, ``CASH`` last).

    ``signals``: signal rows; only those dated ``as_of`` are read, one per ticker. A BUY needs a
    finite ``expected_return`` (log, over ``horizon`` sessions, net of costs) for Kelly.
    ``returns_history``: ``date`` + one column per ticker of daily log returns.
    ``previous_weights``: ticker -> weight of the last allocation (``CASH`` ignored), the first
    fallback when a solve fails. ``method`` is the one asked for; ``method_used`` the one that
    produced the weights (a fallback, or ``flat`` when a halt put everything in cash).
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; known: {METHODS}")
    if "date" not in returns_history.columns:
        raise ValueError("returns_history needs a date column: rows after as_of must be seen to be dropped")
    limits = settings.limits
    day = signals.filter(pl.col("as_of") == as_of) if signals.height else signals
    tickers = day["ticker"].to_list() if day.height else []
    if len(set(tickers)) != len(tickers):
        raise ValueError(f"more than one signal per ticker at {as_of}")
    if CASH in tickers:
        raise ValueError(f"{CASH!r} is the cash row's name, not a ticker")
    sig = {r["ticker"]: r for r in day.iter_rows(named=True)}
    buys = [t for t in tickers if sig[t]["action"] == "BUY"]

    halt = halt_reason(state, limits)
    if halt is not None:
        note = halt_note(halt, state, limits)
        rows = [(t, 0.0, "risky", note, halt) for t in sorted(tickers)]
        return _frame(as_of, rows, method, "flat", None, cash_note=note, cash_binding=halt)

    safe_pool: list[str] = []
    if method == "barbell" and settings.barbell_safe_sleeve == "low_vol":
        sells = {t for t in tickers if sig[t]["action"] == "SELL"}
        safe_pool = [c for c in returns_history.columns if c != "date" and c not in sells and c not in buys]
    win = estimation_window(
        returns_history, as_of, buys + safe_pool, lookback=settings.lookback, min_history=settings.min_history
    )
    result = _run(method, win.X, win.tickers, set(buys), sig, settings, state, previous_weights)

    names = sorted(set(tickers) | set(win.tickers))
    index = {t: i for i, t in enumerate(names)}
    w = np.zeros(len(names))
    sleeves = ["risky" if t in sig else "safe" for t in names]
    for t, wt, sl in zip(win.tickers, result.weights, result.sleeves, strict=True):
        w[index[t]] = wt
        sleeves[index[t]] = sl
    conf = np.array([_buy_confidence(sig.get(t)) for t in names])
    limited = enforce(w, sleeves, conf, limits, state)

    sized = set(win.tickers)
    rows = []
    for i, t in enumerate(names):
        note = _note(t, sleeves[i], sig, win.excluded, limited.notes[i])
        if result.note and t in sized:
            note = f"{note}; {result.note}"
        rows.append((t, float(limited.weights[i]), sleeves[i], note, limited.binding[i]))
    rows = [r for r in rows if r[0] in sig or r[1] > 0]  # safe-pool names not held add no row
    return _frame(
        as_of,
        rows,
        method,
        result.method_used,
        result.fallback_reason,
        cash_note="uninvested",
        cash_binding=NONE,
    )


def _run(
    method: str,
    X: np.ndarray,
    tickers: list[str],
    buys: set[str],
    sig: Mapping[str, Mapping[str, object]],
    settings: AllocationSettings,
    state: AllocationState,
    previous_weights: Mapping[str, float] | None,
) -> MethodResult:
    prev = None
    if previous_weights is not None:
        prev = np.array([float(previous_weights.get(t, 0.0)) for t in tickers])
    garch = (
        np.array([float(state.garch_variances.get(t, math.nan)) for t in tickers])
        if state.garch_variances
        else None
    )
    lc = settings.linear_constraints
    match method:
        case "equal_weight":
            return methods.equal_weight(X, tickers)
        case "inverse_vol":
            return methods.inverse_vol(X, tickers)
        case "risk_parity":
            return methods.risk_parity(
                X, tickers, variances=garch, linear_constraints=lc, previous_weights=prev
            )
        case "hrp":
            return methods.hrp(X, tickers, variances=garch, previous_weights=prev)
        case "kelly":
            mu = np.array([_daily_mu(sig[t]) for t in tickers])
            return methods.kelly(
                X,
                tickers,
                mu,
                fraction=settings.kelly_fraction,
                variances=garch,
                linear_constraints=lc,
                previous_weights=prev,
            )
        case "barbell":
            risky = np.array([t in buys for t in tickers], dtype=bool)
            mv = (
                state.market_vol
                if state.market_vol is not None
                else market_vol_annual(X[:, risky] if risky.any() else X)
            )
            return methods.barbell(
                X,
                tickers,
                risky,
                regime_confidence=state.regime_confidence,
                market_vol=mv,
                vol_target=settings.barbell_vol_target,
                max_risky=settings.barbell_max_risky,
                safe_sleeve=settings.barbell_safe_sleeve,
                safe_count=settings.barbell_safe_count,
            )
    raise AssertionError(method)


def _daily_mu(row: Mapping[str, object]) -> float:
    """The signal's expected log return per session; 0 when missing or not finite (no edge, no bet)."""
    er, h = row.get("expected_return"), row.get("horizon") or 1
    if not isinstance(er, int | float) or not math.isfinite(er) or not isinstance(h, int) or h < 1:
        return 0.0
    return float(er) / h


def _buy_confidence(row: Mapping[str, object] | None) -> float:
    if row is None or row.get("action") != "BUY":
        return math.nan
    c = row.get("confidence")
    return float(c) if isinstance(c, int | float) and math.isfinite(c) else math.nan


def _note(
    ticker: str,
    sleeve: str,
    sig: Mapping[str, Mapping[str, object]],
    excluded: Mapping[str, str],
    limit_note: str,
) -> str:
    parts = []
    row = sig.get(ticker)
    if row is None or sleeve == "safe":
        parts.append("safe sleeve: low volatility")
    elif row["action"] != "BUY":
        parts.append(f"{row['action']}: no position")
    else:
        parts.append(f"BUY conf {row.get('confidence')} from {row.get('source')}")
    if ticker in excluded:
        parts.append(excluded[ticker])
    if limit_note:
        parts.append(limit_note)
    return "; ".join(parts)


def _frame(
    as_of: dt.date,
    rows: list[tuple[str, float, str, str, str]],
    method: str,
    method_used: str,
    fallback_reason: str | None,
    *,
    cash_note: str,
    cash_binding: str,
) -> pl.DataFrame:
    invested = math.fsum(r[1] for r in rows)
    cash = max(0.0, 1.0 - invested)
    rows = [*rows, (CASH, cash, "safe", cash_note, cash_binding)]
    return pl.DataFrame(
        {
            "as_of": [as_of] * len(rows),
            "ticker": [r[0] for r in rows],
            "weight": [r[1] for r in rows],
            "sleeve": [r[2] for r in rows],
            "method": [method] * len(rows),
            "method_used": [method_used] * len(rows),
            "fallback_reason": [fallback_reason] * len(rows),
            "reason": [r[3] for r in rows],
            "binding_limit": [r[4] for r in rows],
        },
        schema=ALLOCATION_SCHEMA,
    )
