"""Trailing windows and date lists counted in NYSE sessions."""

import datetime as dt

import pytest

from model_code.market_data.calendar import trading_calendar


def test_window_start_counts_sessions_back_from_the_end():
    cal = trading_calendar()
    assert cal.window_start(dt.date(2019, 1, 2), 1) == dt.date(2019, 1, 2)
    assert cal.window_start(dt.date(2019, 1, 2), 2) == dt.date(2018, 12, 31)
    assert cal.window_start(dt.date(2018, 12, 25), 1) == dt.date(2018, 12, 24)  # a holiday is no session
    days = cal.session_dates(dt.date(2018, 1, 1), dt.date(2019, 6, 28))
    assert all(isinstance(d, dt.date) for d in days) and days[0] == dt.date(2018, 1, 2)
    assert cal.window_start(dt.date(2019, 6, 28), 252) == days[-252]
    with pytest.raises(ValueError, match="at least one session"):
        cal.window_start(dt.date(2019, 6, 28), 0)
