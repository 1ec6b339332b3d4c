"""Jumps that wait for their next bar: a one-bar move beyond the threshold is a spike only if the
next bar reverts it, so until that bar exists the move is *held*, neither stored nor rejected.

One rule, walked in date order over a ticker's series (the last stored bar before the window,
bars held by earlier runs, the batch's candidates, the stored bars of the window and the first
stored bar after it), so a nightly run (one session, with yesterday's held bar read back) and a
range run over the same bars decide every bar alike:

- a candidate whose log return against the last kept bar is within ``jump_log_return`` is kept;
- beyond it, the candidate is *pending* and the next element of the series decides: a return
  back beyond the threshold in the opposite sign makes it a ``spike`` (the kept bar before it
  stays the reference, so the reverting bar is judged against that, not against the spike);
  anything else confirms a lasting level and the candidate is kept (``accept``);
- a candidate still pending at the end of the series is ``hold``.

Stored bars are context only: never re-judged, they move the reference and resolve a pending
candidate like any other bar. Returns are log returns of ``coalesce(adj_close, close)``, so a
split absorbed by the adjusted close is no jump (it is a ``split`` finding instead).

:func:`judge_jumps` is the rule; :func:`mark_jumps` applies it to a validator batch (reasons
``price_spike`` and ``unconfirmed_jump``) and to the held bars read back from the quarantine.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl

from model_code.validation.findings import HISTORY_KINDS
from model_code.validation.stored import HELD_SCHEMA, StoredBars

KEEP, SPIKE, HOLD, CONTEXT = "accept", "spike", "hold", "context"


def judge_jumps(series: pl.DataFrame, limit: float) -> pl.DataFrame:
    """The verdict on every element of ``series``.

    Args:
        series: ``ticker``, ``date``, ``price`` (coalesce(adj_close, close), > 0) and ``fixed``
            (True for stored bars, which are context), at most one row per (ticker, date).
        limit: the jump threshold, an absolute daily log return (e.g. 0.5).

    Returns:
        ``series`` sorted by (ticker, date) with ``verdict`` (``accept`` / ``spike`` / ``hold``
        for candidates, ``context`` for fixed rows), ``log_return`` (against the kept bar it was
        judged against; NULL for a ticker's first bar) and ``decided_by`` (the date of the bar
        that decided a jump; NULL otherwise).
    """
    ordered = series.sort("ticker", "date")
    if ordered.select(pl.struct("ticker", "date").is_duplicated().any()).item():
        raise ValueError("judge_jumps: a (ticker, date) appears twice in the series")
    price = pl.col("price")
    naive = ordered.with_columns(_r=(price / price.shift(1)).log().over("ticker"))
    # Fast path: a ticker none of whose candidates moves beyond the threshold against the bar
    # before it never has a pending candidate, so every candidate is kept as it stands.
    jumpy = (
        naive.filter(~pl.col("fixed") & (pl.col("_r").abs() > limit)).get_column("ticker").unique().to_list()
    )
    calm = naive.filter(~pl.col("ticker").is_in(jumpy)).select(
        pl.exclude("_r"),
        verdict=pl.when(pl.col("fixed")).then(pl.lit(CONTEXT)).otherwise(pl.lit(KEEP)),
        log_return=pl.col("_r"),
        decided_by=pl.lit(None, dtype=pl.Date()),
    )
    walked = [
        _walk(part.drop("_r"), limit)
        for part in naive.filter(pl.col("ticker").is_in(jumpy)).partition_by("ticker", maintain_order=True)
    ]
    return pl.concat([calm, *walked], how="vertical_relaxed").sort("ticker", "date")


def _walk(part: pl.DataFrame, limit: float) -> pl.DataFrame:
    """The sequential rule over one ticker's series (already in date order)."""
    prices = part.get_column("price").to_numpy()
    fixed = part.get_column("fixed").to_numpy()
    dates = part.get_column("date").to_list()
    n = len(prices)
    verdict = np.array([CONTEXT if f else KEEP for f in fixed], dtype=object)
    returns: list[float | None] = [None] * n
    decided: list[object] = [None] * n
    reference: float | None = None  # price of the last kept (or stored) bar
    pending: int | None = None
    for i in range(n):
        p = float(prices[i])
        if pending is not None:
            back = math.log(p / prices[pending])
            move = returns[pending]
            decided[pending] = dates[i]
            if abs(back) > limit and math.copysign(1.0, back) != math.copysign(1.0, move):
                verdict[pending] = SPIKE
            else:
                verdict[pending] = KEEP
                reference = float(prices[pending])
            pending = None
        r = math.log(p / reference) if reference is not None else None
        returns[i] = r
        if not fixed[i] and r is not None and abs(r) > limit:
            pending = i  # the next bar decides
            continue
        reference = p
    if pending is not None:
        verdict[pending] = HOLD
    return part.with_columns(
        verdict=pl.Series(verdict.tolist(), dtype=pl.String()),
        log_return=pl.Series(returns, dtype=pl.Float64()),
        decided_by=pl.Series(decided, dtype=pl.Date()),
    )


def mark_jumps(frame: pl.DataFrame, stored: StoredBars, limit: float) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Mark the batch's spikes and held jumps (:func:`judge_jumps`); return the frame and
    the held rows of earlier runs with their verdict (``accept``: released; ``spike``; ``hold``)."""
    price = pl.coalesce("adj_close", "close").alias("price")
    candidates = frame.filter(pl.col("_reason").is_null()).select(
        "ticker", "date", price, fixed=pl.lit(False), _row="_row", _held=pl.lit(None, pl.UInt32())
    )
    held = stored.held if stored.held is not None else pl.DataFrame(schema=HELD_SCHEMA)
    held = held.with_row_index("_held")
    waiting = held.select(
        "ticker", "date", price, fixed=pl.lit(False), _row=pl.lit(None, pl.UInt32()), _held="_held"
    )
    moving = pl.concat([candidates.select("ticker", "date"), waiting.select("ticker", "date")])
    context = [
        part.select("ticker", "date", price)
        for part in (stored.previous, stored.window, stored.following)
        if part is not None and part.height
    ]
    fixed = (
        pl.concat(context, how="vertical_relaxed")
        .join(moving, on=["ticker", "date"], how="anti")
        .with_columns(fixed=pl.lit(True), _row=pl.lit(None, pl.UInt32()), _held=pl.lit(None, pl.UInt32()))
        if context
        else None
    )
    parts = [candidates, waiting] + ([fixed] if fixed is not None else [])
    judged = judge_jumps(pl.concat(parts, how="vertical_relaxed"), limit)

    verdict = judged.filter(pl.col("_row").is_not_null()).select("_row", "verdict")
    reason = {SPIKE: "price_spike", HOLD: "unconfirmed_jump"}
    frame = frame.join(verdict, on="_row", how="left")
    for v, name in reason.items():
        hit = pl.col("verdict") == v
        frame = frame.with_columns(
            _reason=pl.when(hit).then(pl.lit(name)).otherwise(pl.col("_reason")),
            _failed=pl.when(hit)
            .then(pl.col("_failed").list.concat(pl.lit([name])))
            .otherwise(pl.col("_failed")),
        )
    held_verdicts = judged.filter(pl.col("_held").is_not_null()).select(
        "_held", "verdict", "decided_by", "log_return"
    )
    return frame.drop("verdict"), held.join(held_verdicts, on="_held", how="left").drop("_held")


def release_findings(released: pl.DataFrame) -> pl.DataFrame:
    """A ``jump_released`` (info) finding per held bar that its next bar confirmed."""
    return released.select(
        "ticker",
        "date",
        kind=pl.lit("jump_released"),
        severity=pl.lit(HISTORY_KINDS["jump_released"]),
        detail=pl.format(
            "held since {} (log return {}); the bar of {} confirmed the level",
            pl.col("held_at").cast(pl.String),
            pl.col("log_return").round(3).cast(pl.String),
            pl.col("decided_by").cast(pl.String),
        ),
    )
