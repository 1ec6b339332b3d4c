"""Forecasts for one ``as_of`` session: every model for every ticker, plus the ensemble.

Point in time: only bars dated <= ``as_of`` are used (the caller passes exactly those), each
model is fitted on the last ``history`` daily log returns, and the ensemble's weights come
from losses of forecasts whose targets had closed by ``as_of``.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence

import numpy as np
import polars as pl

from model_code.forecasting.base import HORIZONS, Forecast
from model_code.forecasting.batch import ModelFactory, TickerResult
from model_code.forecasting.ensemble import combine, confidence, ensemble_weights
from model_code.forecasting.panel import PanelFactory, forecast_tickers_and_panel, return_panel
from model_code.forecasting.returns import daily_log_returns
from model_code.market_data.calendar import TradingCalendar, trading_calendar

PREDICTION_SCHEMA: dict[str, pl.DataType] = {
    "as_of": pl.Date(),
    "ticker": pl.String(),
    "model": pl.String(),
    "horizon": pl.Int32(),
    "target_date": pl.Date(),
    "yhat": pl.Float64(),
    "lower_80": pl.Float64(),
    "upper_80": pl.Float64(),
    "lower_95": pl.Float64(),
    "upper_95": pl.Float64(),
    "vol_forecast": pl.Float64(),
    "fit_seconds": pl.Float64(),
}


def return_series(bars: pl.DataFrame, as_of: dt.date, history: int) -> dict[str, np.ndarray]:
    """Per ticker, the last ``history`` daily log returns of coalesce(adj_close, close) up to
    ``as_of``; tickers without a bar on ``as_of`` are left out (nothing to forecast from)."""
    rets = daily_log_returns(bars, as_of)
    live = rets.group_by("ticker").agg(pl.col("date").max().alias("last")).filter(pl.col("last") == as_of)
    rets = (
        rets.join(live.select("ticker"), on="ticker")
        .group_by("ticker", maintain_order=True)
        .agg(pl.col("r").tail(history))
    )
    return {t: np.asarray(r, dtype=np.float64) for t, r in rets.iter_rows()}


def target_dates(
    as_of: dt.date, horizons: Sequence[int], calendar: TradingCalendar | None = None
) -> dict[int, dt.date]:
    """The session ``h`` sessions after ``as_of`` for each horizon."""
    calendar = calendar or trading_calendar()
    ahead = calendar.sessions_in_range(
        as_of + dt.timedelta(days=1), as_of + dt.timedelta(days=2 * max(horizons) + 10)
    )
    return {h: dt.date.fromisoformat(str(ahead[h - 1])) for h in horizons}


def forecast_as_of(
    bars: pl.DataFrame,
    as_of: dt.date,
    models: Mapping[str, ModelFactory],
    *,
    history: int = 1000,
    min_history: int = 252,
    horizons: Sequence[int] = HORIZONS,
    workers: int | None = None,
    panel_models: Mapping[str, PanelFactory] | None = None,
    calendar: TradingCalendar | None = None,
) -> tuple[list[TickerResult], dict[int, dt.date]]:
    """Fit every model on every ticker with at least ``min_history`` returns up to ``as_of``.

    ``panel_models`` are fitted once on the date-aligned panel of the last ``history`` sessions, or
    all of them if fewer but at least ``min_history`` (:func:`~model_code.forecasting.panel.return_panel`); only tickers the per-ticker models
    forecast are kept, so both describe the same universe.
    """
    series = {t: r for t, r in return_series(bars, as_of, history).items() if r.size >= min_history}
    panel: tuple[np.ndarray, list[str], dict[str, str]] = (np.zeros((0, 0)), [], {})
    if panel_models and series:
        returns, tickers, skipped = return_panel(bars, as_of, history, min_history)
        keep = [i for i, t in enumerate(tickers) if t in series]
        panel = (
            returns[:, keep] if keep else np.zeros((0, 0)),
            [tickers[i] for i in keep],
            {t: why for t, why in skipped.items() if t in series},
        )
    results = forecast_tickers_and_panel(series, models, panel_models or {}, panel, horizons, workers=workers)
    return results, target_dates(as_of, horizons, calendar)


def predictions_frame(
    results: Sequence[TickerResult], as_of: dt.date, dates: Mapping[int, dt.date]
) -> pl.DataFrame:
    """One row per (ticker, model, horizon) in the ``forecasts.predictions`` layout."""
    rows = []
    for res in results:
        seconds = {d.model: d.fit_seconds for d in res.diagnostics}
        rows += [_row(as_of, res.ticker, f, dates[f.horizon], seconds.get(f.model)) for f in res.forecasts]
    return pl.DataFrame(rows, schema=PREDICTION_SCHEMA)


def fit_log_frame(results: Sequence[TickerResult], as_of: dt.date) -> pl.DataFrame:
    """One row per (ticker, model): ok or failed, with the error and the fit diagnostics."""
    rows = []
    for res in results:
        for d in res.diagnostics:
            rows.append(
                {
                    "as_of": as_of,
                    "ticker": res.ticker,
                    "model": d.model,
                    "status": "ok",
                    "error": None,
                    "n_obs": d.n_obs,
                    "warnings": d.warnings,
                    "fit_seconds": d.fit_seconds,
                    "params": json.dumps(d.params, default=str),
                }
            )
        for model, error in res.errors.items():
            rows.append(
                {
                    "as_of": as_of,
                    "ticker": res.ticker,
                    "model": model,
                    "status": "failed",
                    "error": error,
                    "n_obs": None,
                    "warnings": None,
                    "fit_seconds": None,
                    "params": None,
                }
            )
    return pl.DataFrame(
        rows,
        schema={
            "as_of": pl.Date,
            "ticker": pl.String,
            "model": pl.String,
            "status": pl.String,
            "error": pl.String,
            "n_obs": pl.Int64,
            "warnings": pl.Int64,
            "fit_seconds": pl.Float64,
            "params": pl.String,
        },
    )


def ensemble_frame(
    predictions: pl.DataFrame, losses: pl.DataFrame, *, floor: float = 0.02, cap: float = 0.6
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Ensemble rows per (ticker, horizon) and the weights used per horizon.

    ``losses`` has (model, horizon, mse, n): out-of-sample MSE of each model's stored
    forecasts whose target had closed. A horizon without losses for any model (a fresh
    warehouse) uses equal weights, recorded as such.
    """
    weight_rows, out = [], []
    for (horizon,), block in predictions.group_by(["horizon"], maintain_order=True):
        models = sorted(block["model"].unique())
        known = {m: mse for m, h, mse, _ in losses.iter_rows() if h == horizon and m in models}
        if known:
            weights = ensemble_weights(known, floor=floor, cap=cap)
            conf = confidence(weights, known)
        else:
            weights, conf = dict.fromkeys(models, 1.0 / len(models)), 0.0
        weight_rows += [
            {"horizon": horizon, "model": m, "weight": w, "mse": known.get(m), "confidence": conf}
            for m, w in weights.items()
        ]
        for (ticker,), rows in block.group_by(["ticker"], maintain_order=True):
            parts = [
                Forecast(
                    r["model"],
                    horizon,
                    r["yhat"],
                    r["lower_80"],
                    r["upper_80"],
                    r["lower_95"],
                    r["upper_95"],
                    r["vol_forecast"],
                )
                for r in rows.iter_rows(named=True)
            ]
            usable = [p for p in parts if weights.get(p.model, 0) > 0]
            if usable:
                first = rows.row(0, named=True)
                out.append(_row(first["as_of"], ticker, combine(usable, weights), first["target_date"], None))
    weights_frame = pl.DataFrame(
        weight_rows,
        schema={
            "horizon": pl.Int32,
            "model": pl.String,
            "weight": pl.Float64,
            "mse": pl.Float64,
            "confidence": pl.Float64,
        },
    )
    return pl.DataFrame(out, schema=PREDICTION_SCHEMA), weights_frame


def _row(as_of, ticker, f: Forecast, target_date, fit_seconds) -> dict:
    return {
        "as_of": as_of,
        "ticker": ticker,
        "model": f.model,
        "horizon": f.horizon,
        "target_date": target_date,
        "yhat": f.yhat,
        "lower_80": f.lower_80,
        "upper_80": f.upper_80,
        "lower_95": f.lower_95,
        "upper_95": f.upper_95,
        "vol_forecast": f.vol_forecast,
        "fit_seconds": fit_seconds,
    }
