"""Forecasts for a run of as_of sessions, as the nightly ``forecasts/predictions`` asset makes them.

Pure compute: the caller reads the bars, the stored forecast history and the targets, closes
the warehouse, calls :func:`forecast_sessions`, and writes what it returns in one transaction.
Each session's ensemble is weighted by :func:`~model_code.forecasting.losses.realized_losses`
over the trailing ``loss_lookback`` sessions, counting the stored history and the forecasts
made earlier in the same run, exactly as one-session-a-night runs would.

With a :class:`~model_code.forecasting.stored.FitStore` (``fits``) the sessions follow the
production policy: each applies the latest stored fit to its data, and fits made on the way
(first sight, past ``max_age``) are returned per session for storing and used by the later
sessions of the run. Without one, every model is refitted at every session.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

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
from model_code.forecasting.stored import (
    DEFAULT_MAX_AGE,
    FitStore,
    StoredFit,
    failures,
    forecast_as_of_stored,
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
    fits: list[StoredFit] = field(default_factory=list)  # new fits to store (stored policy)
    stored_fits_used: int = 0


def loss_window_start(as_of: dt.date, lookback: int, calendar: TradingCalendar | None = None) -> dt.date:
    """The first of the ``lookback`` sessions ending at ``as_of`` (the losses' ``since``)."""
    return (calendar or trading_calendar()).window_start(as_of, lookback)


def forecast_session(
    bars: pl.DataFrame,
    as_of: dt.date,
    models: Mapping[str, ModelFactory],
    fits: FitStore | None,
    failed: set[tuple[str, str]],
    *,
    home: Path | None = None,
    max_age: int = DEFAULT_MAX_AGE,
    history: int = 1000,
    min_history: int = 252,
    workers: int | None = None,
    panel_models: Mapping[str, PanelFactory] | None = None,
    horizons: Sequence[int] = HORIZONS,
    calendar: TradingCalendar | None = None,
) -> tuple[list, dict, list[StoredFit]]:
    """One session's forecasts on the bars up to ``as_of``: from the stored ``fits`` (what has no
    usable fit is fitted and added to ``fits``; the session's failed fits are added to
    ``failed``, so later sessions leave them to the next refit), or, with ``fits`` None, every
    model refitted. Returns the fit results, their forecast dates and the fits made."""
    upto = bars.filter(pl.col("date") <= as_of)
    if fits is None:
        results, dates = forecast_as_of(
            upto, as_of, models, history=history, min_history=min_history, horizons=horizons,
            workers=workers, panel_models=panel_models, calendar=calendar,
        )  # fmt: skip
        return results, dates, []
    results, dates, fresh = forecast_as_of_stored(
        upto, as_of, models, fits, home=home or Path("."), panel_models=panel_models, max_age=max_age,
        history=history, min_history=min_history, horizons=horizons, workers=workers, calendar=calendar,
        failed=failed,
    )  # fmt: skip
    for fit in fresh:
        fits.add(fit)
    failed |= failures(results)
    return results, dates, fresh


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
    fits: FitStore | None = None,
    max_age: int = DEFAULT_MAX_AGE,
    home: Path | None = None,
    failed: Collection[tuple[str, str]] = (),
) -> list[SessionForecasts]:
    """Fit every model at each session in ``sessions`` and weight its ensemble point in time.

    Args:
        bars: stored bars up to the last session (each session uses only bars dated <= it).
        history_forecasts: stored forecasts made before the first session, columns ``origin,
            ticker, model, horizon, target_date, yhat`` (``@forecast_history``).
        targets: ``features.targets`` rows covering the history's and the sessions' dates.
        loss_lookback: sessions of realized forecasts the ensemble weights use.
        fits: stored fits (windows ending up to the last session); ``None`` refits everything.
        max_age: sessions after which a stored fit is refitted before use.
        home: ``$PM_HOME``, the root of the stored fits' artifact paths.
        failed: (ticker, model) pairs whose fitting failed on a recent session before the first
            (``forecasts.fit_log``); with those of each session they are not refitted nightly.
    """
    calendar = calendar or trading_calendar()
    long_targets = targets_long(targets, horizons)
    known = attach_realized(history_forecasts, long_targets).select(HISTORY_COLUMNS)
    out: list[SessionForecasts] = []
    failed = set(failed)
    for as_of in sorted(sessions):
        results, dates, fresh = forecast_session(
            bars, as_of, models, fits, failed, home=home, max_age=max_age, history=history,
            min_history=min_history, workers=workers, panel_models=panel_models, horizons=horizons,
            calendar=calendar,
        )  # fmt: skip
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
                fits=fresh,
                stored_fits_used=sum(
                    bool(d.params.get("stored_fit")) for res in results for d in res.diagnostics
                ),
            )
        )
        fresh = attach_realized(
            preds.select("as_of", "ticker", "model", "horizon", "target_date", "yhat"), long_targets
        )
        known = pl.concat([known, fresh.select(HISTORY_COLUMNS)])
    return out
