"""Staleness: how many trading sessions a ticker's latest bar lags the as-of date."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from model_code.market_data.calendar import TradingCalendar, trading_calendar


def sessions_behind(last_date: dt.date, as_of: dt.date, calendar: TradingCalendar | None = None) -> int:
    """Sessions after ``last_date`` up to and including ``as_of`` (0 = up to date)."""
    calendar = calendar or trading_calendar()
    if last_date >= as_of:
        return 0
    return len(calendar.sessions_in_range(last_date + dt.timedelta(days=1), as_of))


def stale_tickers(
    last_dates: Mapping[str, dt.date | None],
    as_of: dt.date,
    *,
    max_sessions: int = 5,
    calendar: TradingCalendar | None = None,
) -> dict[str, int | None]:
    """Tickers whose latest bar is more than ``max_sessions`` sessions before ``as_of``.

    Returns ticker → sessions behind (``None`` for a ticker with no bar at all).
    """
    calendar = calendar or trading_calendar()
    stale: dict[str, int | None] = {}
    for ticker, last in last_dates.items():
        if last is None:
            stale[ticker] = None
            continue
        behind = sessions_behind(last, as_of, calendar)
        if behind > max_sessions:
            stale[ticker] = behind
    return stale
