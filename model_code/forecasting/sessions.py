"""Forecasts for a run of as_of sessions, as the nightly ``forecasts/predictions`` asset makes them.

Pure compute: the caller reads the bars, the stored forecast history and the targets, closes
the warehouse, calls :func:`forecast_sessions`, and writes what it returns in one transaction.
Each session's ensemble is weighted by :func:`~model_code.forecasting.losses.realized_losses`
over the trailing ``loss_lookback`` sessions, counting the stored history and the forecasts
made earlier in the same run, exactly as one-session-a-night runs would.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import polars as pl

from model_code.forecasting.batch import ModelFactory
from model_code.forecasting.losses import attach_realized, realized_losses, targets_long
from model_code.forecasting.panel import PanelFactory
from model_code.forecasting.predictions import (
    ensemble_frame,
    fit_log_frame,
    forecast_as_of,
    predictions_frame,
)
from model_code.horizons import HORIZONS
from model_code.market_data.calendar import TradingCalendar, trading_calendar

HISTORY_COLUMNS = ("origin", "ticker", "model", "horizon", "target_date", "yhat", "actual")


@dataclass
class SessionForecasts:
    """What one as_of session produced, in the layouts of the ``forecasts`` tables."""

    as_of: dt.date
    predictions: pl.DataFrame  # every model's rows plus the ensemble's
    fit_log: pl.DataFrame
    weights: pl.DataFrame  # (as_of, horizon, model, weight, mse, confidence)
    tickers: int
    failed_fits: int = field(default=0)


def loss_window_start(as_of: dt.date, lookback: int, calendar: TradingCalendar | None = None) -> dt.date:
    """The first of the ``lookback`` sessions ending at ``as_of`` (the losses' ``since``)."""
    return (calendar or trading_calendar()).window_start(as_of, lookback)


def forecast_sessions(
    bars: pl.DataFrame,
    sessions: Sequence[dt.date],
    models: Mapping[str, ModelFactory],
    *,
    history_forecasts: pl.DataFrame,
    targets: pl.DataFrame,
    loss_lookback: int = 63,
    history: int = 1000,
    min_history: int = 252,
    workers: int | None = None,
    panel_models: Mapping[str, PanelFactory] | None = None,
    horizons: Sequence[int] = HORIZONS,
    calendar: TradingCalendar | None = None,
) -> list[SessionForecasts]:
    """Fit every model at each session in ``sessions`` and weight its ensemble point in time.

    Args:
        bars: stored bars up to the last session (each session uses only bars dated <= it).
        history_forecasts: stored forecasts made before the first session, columns ``origin,
            ticker, model, horizon, target_date, yhat`` (``@forecast_history``).
        targets: ``features.targets`` rows covering the history's and the sessions' dates.
        loss_lookback: sessions of realized forecasts the ensemble weights use.
    """
    calendar = calendar or trading_calendar()
    long_targets = targets_long(targets, horizons)
    known = attach_realized(history_forecasts, long_targets).select(HISTORY_COLUMNS)
    out: list[SessionForecasts] = []
    for as_of in sorted(sessions):
        results, dates = forecast_as_of(
            bars.filter(pl.col("date") <= as_of),
            as_of,
            models,
            history=history,
            min_history=min_history,
            horizons=horizons,
            workers=workers,
            panel_models=panel_models,
            calendar=calendar,
        )
        preds = predictions_frame(results, as_of, dates)
        losses = realized_losses(known, as_of, loss_window_start(as_of, loss_lookback, calendar))
        ensemble, weights = ensemble_frame(preds, losses)
        log = fit_log_frame(results, as_of)
        out.append(
            SessionForecasts(
                as_of=as_of,
                predictions=pl.concat([preds, ensemble]),
                fit_log=log,
                weights=weights.with_columns(as_of=pl.lit(as_of)),
                tickers=len(results),
                failed_fits=int((log["status"] == "failed").sum()),
            )
        )
        fresh = attach_realized(
            preds.select("as_of", "ticker", "model", "horizon", "target_date", "yhat"), long_targets
        )
        known = pl.concat([known, fresh.select(HISTORY_COLUMNS)])
    return out
