"""Signals for T are unchanged when every bar after T is removed, calibration included."""

from __future__ import annotations

import datetime as dt

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from model_code.features import build_targets
from model_code.market_data.calendar import trading_calendar
from model_code.signals.daily import signals_for_sessions
from model_code.signals.router import RouterSettings
from tests.signal_cases import TICKERS, bars, planted_forecasts

BARS = bars()
SESSIONS = trading_calendar().session_dates(dt.date(2018, 1, 2), dt.date(2019, 5, 31))
FORECASTS = planted_forecasts(BARS, SESSIONS)
SETTINGS = RouterSettings(enabled={"ts": True, "ml": True})


def _signals(bars: pl.DataFrame, forecasts: pl.DataFrame, as_of: dt.date) -> pl.DataFrame:
    tickers = {d: g["ticker"].to_list() for (d,), g in bars.filter(pl.col("date") == as_of).group_by("date")}
    return signals_for_sessions(
        [as_of], tickers, forecasts, build_targets(bars, [5]), SETTINGS, calibration_lookback=120
    )


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    day=st.integers(min_value=150, max_value=len(SESSIONS) - 1),
    kept=st.sets(st.sampled_from(TICKERS), min_size=1),
)
def test_signals_at_t_ignore_every_bar_and_forecast_after_t(day, kept):
    as_of = SESSIONS[day]
    full = _signals(BARS, FORECASTS, as_of)
    # Every later bar is removed for the kept tickers, and all later forecasts for all of them.
    cut = BARS.filter((pl.col("date") <= as_of) | ~pl.col("ticker").is_in(list(kept)))
    cut = cut.filter(pl.col("date") <= as_of) if len(kept) == len(TICKERS) else cut
    truncated = _signals(cut, FORECASTS.filter(pl.col("origin") <= as_of), as_of)
    assert full.equals(truncated)
    assert full.height == len(TICKERS)
    assert (full["source"] != "none").any() or (full["confidence"] <= 0.55).all()


def test_the_planted_ml_skill_is_found_and_traded():
    as_of = SESSIONS[-1]
    out = _signals(BARS, FORECASTS, as_of)
    ml = out.filter(pl.col("source") == "ml")
    assert ml.height >= 1 and (ml["confidence"] >= 0.55).all()
    assert not (out["source"] == "ts").any()  # the noise source never clears the threshold
