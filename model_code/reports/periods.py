"""Calendar views of an equity curve for the tearsheets: monthly returns and drawdown periods.

Input is one equity curve, dates in order with equity in currency (a stored ``backtest.equity``
or ``paper.equity`` series). Returns are simple (``0.01`` = +1 %); drawdown depth is a positive
fraction of the peak (``0.1`` = 10 % below it); lengths count sessions (rows), not calendar days.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
import polars as pl

MONTHLY_SCHEMA = {"year": pl.Int32, "month": pl.Int8, "ret": pl.Float64}
PERIOD_SCHEMA = {
    "start": pl.Date,
    "trough": pl.Date,
    "recovery": pl.Date,
    "depth": pl.Float64,
    "sessions": pl.Int64,
    "to_trough": pl.Int64,
}


def monthly_returns(dates: Sequence[dt.date], equity: Sequence[float]) -> pl.DataFrame:
    """``(year, month, ret)``: each month's last equity over the previous month's last (the
    first month over the first equity of the curve)."""
    if len(dates) == 0:
        return pl.DataFrame(schema=MONTHLY_SCHEMA)
    frame = pl.DataFrame(
        {"date": list(dates), "equity": list(equity)}, schema={"date": pl.Date, "equity": pl.Float64}
    )
    ends = (
        frame.sort("date")
        .group_by(year=pl.col("date").dt.year(), month=pl.col("date").dt.month(), maintain_order=True)
        .agg(pl.col("equity").last())
    )
    before = ends["equity"].shift(1).fill_null(float(frame.sort("date")["equity"][0]))
    return ends.select(
        pl.col("year").cast(pl.Int32), pl.col("month").cast(pl.Int8), ret=ends["equity"] / before - 1.0
    )


def drawdown_periods(dates: Sequence[dt.date], equity: Sequence[float], *, top: int = 10) -> pl.DataFrame:
    """The ``top`` deepest drawdowns (:data:`PERIOD_SCHEMA`), deepest first: ``start`` the peak's
    session, ``trough`` the lowest equity before recovery, ``recovery`` the first session back at
    or above the peak (null while under water), ``depth`` (1 - trough / peak), ``sessions`` from
    the peak to the recovery (to the last session while under water), ``to_trough`` from the peak
    to the trough."""
    values = np.asarray(equity, dtype=np.float64)
    rows = []
    peak_i, trough_i, under = 0, 0, False
    for i in range(1, values.size):
        if values[i] >= values[peak_i]:
            if under:
                rows.append((peak_i, trough_i, i))
                under = False
            peak_i = trough_i = i
        else:
            under = True
            if values[i] < values[trough_i]:
                trough_i = i
    if under:
        rows.append((peak_i, trough_i, None))
    records = [
        {
            "start": dates[p],
            "trough": dates[t],
            "recovery": None if r is None else dates[r],
            "depth": float(1.0 - values[t] / values[p]),
            "sessions": int((values.size - 1 if r is None else r) - p),
            "to_trough": int(t - p),
        }
        for p, t, r in rows
    ]
    frame = pl.DataFrame(records, schema=PERIOD_SCHEMA)
    return frame.sort("depth", descending=True).head(top)
