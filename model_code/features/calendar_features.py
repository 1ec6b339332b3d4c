"""Calendar features from the NYSE session calendar.

The exchange calendar is published in advance, so these are known before the day starts and
carry no look-ahead even though "month end" refers to a later session.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from model_code.market_data.calendar import trading_calendar

CALENDAR_COLUMNS: tuple[str, ...] = ("day_of_week", "month", "is_month_end", "sessions_to_month_end")


def calendar_features(dates: pl.Series) -> pl.DataFrame:
    """One row per distinct date: ``day_of_week`` (1=Mon .. 7=Sun), ``month`` (1..12),
    ``is_month_end`` (the date is the month's last NYSE session) and ``sessions_to_month_end``
    (NYSE sessions after the date up to and including the month's last session; 0 on it).

    Dates whose month lies outside the calendar's range get NULL month-end columns.
    """
    uniq = dates.unique().sort().drop_nulls()
    days = uniq.to_numpy().astype("datetime64[D]")
    sessions = trading_calendar().sessions
    next_month = (days.astype("datetime64[M]") + 1).astype("datetime64[D]")
    last = np.searchsorted(sessions, next_month, side="left") - 1
    safe = np.clip(last, 0, len(sessions) - 1)
    in_range = (
        (last >= 0)
        & (sessions[safe].astype("datetime64[M]") == days.astype("datetime64[M]"))
        & (next_month <= sessions[-1] + 1)
    )
    after = np.searchsorted(sessions, days, side="right")
    to_end = np.where(in_range, last - after + 1, 0)
    return (
        pl.DataFrame(
            {
                "date": uniq,
                "day_of_week": uniq.dt.weekday().cast(pl.Int8),
                "month": uniq.dt.month().cast(pl.Int8),
                "is_month_end": pl.Series(sessions[safe] == days).cast(pl.Boolean),
                "sessions_to_month_end": pl.Series(np.maximum(to_end, 0)).cast(pl.Int32),
                "_ok": pl.Series(in_range),
            }
        )
        .with_columns(
            [
                pl.when(pl.col("_ok")).then(pl.col(c)).alias(c)
                for c in ("is_month_end", "sessions_to_month_end")
            ]
        )
        .drop("_ok")
    )
