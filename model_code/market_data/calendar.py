"""The NYSE trading calendar (exchange-calendars ``XNYS``): which dates are trading sessions.

Partitions, gap checks and staleness all count *sessions*, never calendar days, so a holiday
is neither a missing bar nor a stale day.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

import exchange_calendars as xcals
import numpy as np
import pandas as pd

CALENDAR_NAME = "XNYS"
CALENDAR_START = dt.date(1990, 1, 2)
CALENDAR_END = dt.date(2030, 12, 31)


class TradingCalendar:
    """Trading sessions of one exchange between ``CALENDAR_START`` and ``CALENDAR_END``."""

    def __init__(self, name: str = CALENDAR_NAME) -> None:
        self.name = name
        self._cal = xcals.get_calendar(name, start=CALENDAR_START, end=CALENDAR_END)
        self._sessions = np.asarray(self._cal.sessions.values.astype("datetime64[D]"))

    @property
    def sessions(self) -> np.ndarray:
        """All sessions as ``datetime64[D]``, ascending."""
        return self._sessions

    def sessions_in_range(self, start: dt.date, end: dt.date) -> np.ndarray:
        """Sessions ``start <= s <= end`` as ``datetime64[D]``."""
        lo = np.searchsorted(self._sessions, np.datetime64(start, "D"), side="left")
        hi = np.searchsorted(self._sessions, np.datetime64(end, "D"), side="right")
        return self._sessions[lo:hi]

    def session_dates(self, start: dt.date, end: dt.date) -> list[dt.date]:
        """Sessions ``start <= s <= end`` as ``datetime.date``, ascending."""
        return self.sessions_in_range(start, end).tolist()

    def window_start(self, end: dt.date, sessions: int) -> dt.date:
        """The first of the ``sessions`` sessions ending at ``end`` (``end`` counted when it is one):
        the start of a trailing window measured in sessions, never calendar days."""
        if sessions < 1:
            raise ValueError(f"a window needs at least one session, got {sessions}")
        hi = np.searchsorted(self._sessions, np.datetime64(end, "D"), side="right")
        return self._sessions[max(0, hi - sessions)].tolist()

    def is_session(self, day: dt.date) -> bool:
        """Whether ``day`` is a trading session."""
        d = np.datetime64(day, "D")
        i = np.searchsorted(self._sessions, d)
        return bool(i < len(self._sessions) and self._sessions[i] == d)

    def session_index(self, days: np.ndarray) -> np.ndarray:
        """Ordinal of each date among sessions (a non-session gets the next session's ordinal)."""
        return np.searchsorted(self._sessions, days.astype("datetime64[D]"), side="left")

    def previous_session(self, day: dt.date) -> dt.date:
        """The last session strictly before ``day``."""
        i = np.searchsorted(self._sessions, np.datetime64(day, "D"), side="left")
        if i == 0:
            raise ValueError(f"no {self.name} session before {day} (calendar starts {CALENDAR_START})")
        return pd.Timestamp(self._sessions[i - 1]).date()

    def non_session_weekdays(self, start: dt.date, end: dt.date) -> list[dt.date]:
        """Weekdays in ``[start, end]`` that are not sessions (holidays, special closures)."""
        weekdays = pd.bdate_range(start, end).values.astype("datetime64[D]")
        holidays = np.setdiff1d(weekdays, self.sessions_in_range(start, end))
        return [pd.Timestamp(d).date() for d in holidays]


@lru_cache(maxsize=4)
def trading_calendar(name: str = CALENDAR_NAME) -> TradingCalendar:
    """A cached calendar instance (building one takes most of a second)."""
    return TradingCalendar(name)
