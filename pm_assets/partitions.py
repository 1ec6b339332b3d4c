"""Trading-day partitions: one partition per NYSE session; tickers are rows, never partitions.

Weekends and exchange holidays (from exchange-calendars) are excluded, so a partition key is
always a session date and a backfill over a range touches sessions only. The partitions cover
the configured history (:func:`model_code.history.history_window`: ``PM_HISTORY_START``, default
2018-01-02, to ``PM_HISTORY_END``, or the last bundled bar when the bundled data is the only
source), so the UI shows no session the data cannot fill.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import dagster as dg

from model_code.history import history_window
from model_code.market_data.calendar import CALENDAR_END, trading_calendar

HISTORY_START, HISTORY_END = history_window()
MARKET_TIMEZONE = "America/New_York"


def _trading_days() -> dg.DailyPartitionsDefinition:
    tz = ZoneInfo(MARKET_TIMEZONE)
    holidays = trading_calendar().non_session_weekdays(HISTORY_START, CALENDAR_END)
    # end_date is exclusive: the partition of HISTORY_END is the last one.
    end = (HISTORY_END + dt.timedelta(days=1)).isoformat() if HISTORY_END else None
    return dg.DailyPartitionsDefinition(
        start_date=HISTORY_START.isoformat(),
        end_date=end,
        timezone=MARKET_TIMEZONE,
        exclusions=[
            "0 0 * * 6",  # Saturdays
            "0 0 * * 0",  # Sundays
            *(dt.datetime(d.year, d.month, d.day, tzinfo=tz) for d in holidays),
        ],
    )


trading_days = _trading_days()


def partition_dates(context: dg.AssetExecutionContext) -> tuple[dt.date, dt.date]:
    """First and last session (inclusive) of the partition or partition range being run."""
    keys = context.partition_keys
    return dt.date.fromisoformat(keys[0]), dt.date.fromisoformat(keys[-1])
