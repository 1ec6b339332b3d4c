"""Signals for a run of as_of sessions, as the ``signals/daily`` asset makes them.

Pure compute over what the asset read: each source's forecasts (history and the day's), the
realized targets, the tickers with a bar each session. For every session ``s`` each source is
calibrated on its own calls made in the ``calibration_lookback`` sessions before ``s`` whose
target closed by ``s`` (the same window whatever the run's length, so a range run and nightly
runs agree), then :func:`~model_code.signals.router.route` picks one signal per ticker.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

import polars as pl

from model_code.forecasting.losses import attach_realized, targets_long
from model_code.forecasting.predictions import target_dates
from model_code.forecasting.sessions import loss_window_start
from model_code.market_data.calendar import TradingCalendar, trading_calendar
from model_code.signals.calibration import Calibration, fit_calibration, forecast_calls
from model_code.signals.router import SIGNAL_SCHEMA, LlmAsk, RouterSettings, route

DEFAULT_CALIBRATION_LOOKBACK = 252  # sessions
OUTPUT_SCHEMA: dict[str, pl.DataType] = {**SIGNAL_SCHEMA, "target_date": pl.Date()}


def realized_calls(inputs: pl.DataFrame, targets: pl.DataFrame, horizon: int) -> pl.DataFrame:
    """``@signal_inputs`` rows as calls (``direction``, ``score``) with their realized ``actual``."""
    long = targets_long(targets, [horizon])
    with_h = inputs.with_columns(horizon=pl.lit(horizon, dtype=pl.Int32))
    return forecast_calls(attach_realized(with_h, long))


def signals_for_sessions(
    sessions: Sequence[dt.date],
    tickers: Mapping[dt.date, list[str]],
    inputs: pl.DataFrame,
    targets: pl.DataFrame,
    settings: RouterSettings,
    *,
    calibration_lookback: int = DEFAULT_CALIBRATION_LOOKBACK,
    extra_calls: Mapping[str, pl.DataFrame] | None = None,
    llm: LlmAsk | None = None,
    governance_primary: str | None = None,
    calendar: TradingCalendar | None = None,
) -> pl.DataFrame:
    """One routed signal per ticker with a bar, per session (:data:`OUTPUT_SCHEMA`).

    Args:
        tickers: session -> the tickers that have a bar that session.
        inputs: ``@signal_inputs`` rows (``source, origin, ticker, model, target_date, yhat,
            lower_80, upper_80``) covering the lookback before the first session and the sessions.
        targets: ``features.targets`` rows covering the same dates.
        extra_calls: per source, calls that are not return forecasts (the LLM's answers:
            ``origin, target_date, direction, score, actual``), calibrated the same way.
    """
    calendar = calendar or trading_calendar()
    calls = realized_calls(inputs, targets, settings.horizon)
    out = []
    for as_of in sorted(sessions):
        since = loss_window_start(as_of, calibration_lookback + 1, calendar)
        window = calls.filter(pl.col("origin") >= since)
        calibrations: dict[str, Calibration | None] = {
            s: fit_calibration(window.filter(pl.col("source") == s), as_of) for s in ("ts", "ml")
        }
        for source, extra in (extra_calls or {}).items():
            calibrations[source] = fit_calibration(extra.filter(pl.col("origin") >= since), as_of)
        today = {s: calls.filter((pl.col("source") == s) & (pl.col("origin") == as_of)) for s in ("ts", "ml")}
        routed = route(
            as_of,
            sorted(tickers.get(as_of, [])),
            today,
            calibrations,
            settings,
            llm=llm,
            governance_primary=governance_primary,
        )
        target = target_dates(as_of, [settings.horizon], calendar)[settings.horizon]
        out.append(routed.with_columns(target_date=pl.lit(target, dtype=pl.Date)))
    if not out:
        return pl.DataFrame(schema=OUTPUT_SCHEMA)
    return pl.concat(out)
