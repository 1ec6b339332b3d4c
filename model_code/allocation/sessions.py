"""Allocations for a run of sessions, as the ``portfolio/allocations`` asset makes them.

Each session's risk state is derived from what was known at its close, so a range run and
nightly runs agree:

* ``drawdown``: of the allocations' own track record, the frictionless shadow equity
  ``prod(1 + sum_i w_{t-1,i} r_{t,i})`` of the stored (and, within the run, the just-made)
  allocations with each ticker's simple close-to-close return ``r`` (the costed record is the
  backtest's); the kill switch latches once it reaches the limit after ``kill_switch_reset``
  (the date a person last reset it) and stays engaged;
* ``rolling_hit_rate``: the share of the last ``hit_window`` sessions' BUY/SELL signals whose
  target closed by the session and whose direction was right (None under ``min_scored``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
import polars as pl

from model_code.allocation.allocate import ALLOCATION_SCHEMA, CASH, allocate
from model_code.allocation.history import returns_matrix
from model_code.allocation.settings import AllocationSettings, Method
from model_code.allocation.state import AllocationState
from model_code.forecasting.returns import daily_log_returns
from model_code.signals.scorecard import realized_signals

HIT_WINDOW = 63  # sessions
MIN_SCORED = 30  # scored trades before the rolling hit rate can stop trading


def shadow_drawdowns(allocations: pl.DataFrame, bars: pl.DataFrame, since: dt.date | None) -> pl.DataFrame:
    """Per session after ``since``: the shadow equity of ``allocations`` held from the previous
    session's close, its running peak and its drawdown (a fraction)."""
    px = pl.coalesce("adj_close", "close")
    rets = (
        bars.sort("ticker", "date")
        .with_columns(r=(px / px.shift(1) - 1).over("ticker"), prev=pl.col("date").shift(1).over("ticker"))
        .filter(pl.col("r").is_finite())
        .select("ticker", "date", "prev", "r")
    )
    held = allocations.filter(pl.col("ticker") != CASH).select(
        "ticker", pl.col("as_of").alias("prev"), "weight"
    )
    daily = (
        rets.join(held, on=["ticker", "prev"], how="inner")
        .group_by("date")
        .agg((pl.col("weight") * pl.col("r")).sum().alias("ret"))
        .sort("date")
    )
    if since is not None:
        daily = daily.filter(pl.col("date") > since)
    equity = np.cumprod(1.0 + daily["ret"].to_numpy())
    peak = np.maximum.accumulate(np.concatenate([[1.0], equity]))[1:] if equity.size else equity
    return daily.with_columns(
        equity=pl.Series(equity), drawdown=pl.Series(1.0 - equity / peak if equity.size else equity)
    )


def rolling_hit_rate(
    signals: pl.DataFrame, targets: pl.DataFrame, as_of: dt.date, sessions: Sequence[dt.date]
) -> float | None:
    """Hit rate of the BUY/SELL signals made in ``sessions`` (those before ``as_of``) whose target
    closed by ``as_of``; None with fewer than :data:`MIN_SCORED`."""
    window = signals.filter(pl.col("as_of").is_in(list(sessions)) & pl.col("action").is_in(["BUY", "SELL"]))
    done = realized_signals(window, targets, as_of) if window.height else window
    if done.height < MIN_SCORED:
        return None
    direction = np.where(done["action"].to_numpy() == "BUY", 1.0, -1.0)
    return float((direction * done["actual"].to_numpy() > 0).mean())


def allocate_sessions(
    sessions: Sequence[dt.date],
    signals: pl.DataFrame,
    bars: pl.DataFrame,
    targets: pl.DataFrame,
    stored: pl.DataFrame,
    *,
    method: Method,
    settings: AllocationSettings,
    calendar_sessions: Sequence[dt.date],
    kill_switch_reset: dt.date | None = None,
) -> pl.DataFrame:
    """:func:`~model_code.allocation.allocate.allocate` at each session in order.

    Args:
        signals: ``signals.daily`` rows for the sessions and the hit-rate window before them.
        bars: stored bars up to the last session (returns for the estimation and the track).
        targets: ``features.targets`` rows covering the hit-rate window.
        stored: earlier ``portfolio.allocations`` rows (the track record and previous weights).
        calendar_sessions: every NYSE session up to the last one (for the hit-rate window).
        kill_switch_reset: the kill switch counts drawdowns after this date only.
    """
    returns = returns_matrix(daily_log_returns(bars, max(sessions)))
    made = stored.select(list(ALLOCATION_SCHEMA)) if stored.height else pl.DataFrame(schema=ALLOCATION_SCHEMA)
    out = []
    calendar_sessions = sorted(calendar_sessions)
    for as_of in sorted(sessions):
        track = shadow_drawdowns(
            made.filter(pl.col("as_of") < as_of), bars.filter(pl.col("date") <= as_of), kill_switch_reset
        )
        drawdown = float(track["drawdown"][-1]) if track.height else 0.0
        engaged = (
            bool(track.height) and float(track["drawdown"].max()) >= settings.limits.kill_switch_drawdown
        )
        i = calendar_sessions.index(as_of)
        window = calendar_sessions[max(0, i - HIT_WINDOW) : i]
        state = AllocationState(
            drawdown=min(max(drawdown, 0.0), 1.0),
            kill_switch_engaged=engaged,
            rolling_hit_rate=rolling_hit_rate(signals, targets, as_of, window),
        )
        last = made.filter(pl.col("as_of") == made["as_of"].max()) if made.height else made
        previous = {t: w for t, w in zip(last["ticker"], last["weight"], strict=True) if t != CASH} or None
        day = allocate(
            as_of,
            signals.filter(pl.col("as_of") == as_of),
            returns.filter(pl.col("date") <= as_of),
            method=method,
            settings=settings,
            previous_weights=previous,
            state=state,
        )
        out.append(day)
        made = pl.concat([made, day])
    return pl.concat(out) if out else pl.DataFrame(schema=ALLOCATION_SCHEMA)
