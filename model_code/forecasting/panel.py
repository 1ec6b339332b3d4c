"""Models fitted once on the whole universe (MSSA-RL), run next to the per-ticker models.

A panel model needs one date-aligned ``T×N`` matrix of daily log returns: :func:`return_panel`
keeps the tickers whose returns cover every one of the last ``history`` sessions up to
``as_of`` (a session is one where at least one ticker traded); the others are reported as
skipped, with the reason, so the fit log says why they have no panel forecast.

:func:`forecast_panel` turns one panel fit into per-ticker :class:`TickerResult` rows, so
predictions, the fit log and the ensemble treat a panel model like any other. The panel fit's
time is shared equally among its tickers (``fit_seconds``); the total is in the params.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Protocol

import numpy as np
import polars as pl

from model_code.forecasting.array_backend import single_thread_blas
from model_code.forecasting.base import HORIZONS, FitDiagnostics, FitFailed, Forecast
from model_code.forecasting.batch import ModelFactory, TickerResult, default_workers, forecast_universe
from model_code.forecasting.returns import daily_log_returns


class PanelForecaster(Protocol):
    """Fit on a ``T×N`` return matrix; forecast every ticker at once."""

    name: str

    def fit(self, returns: np.ndarray, tickers: Sequence[str]) -> FitDiagnostics: ...

    def forecast(self, horizons: Sequence[int] = HORIZONS) -> dict[str, list[Forecast]]: ...


PanelFactory = Callable[[], PanelForecaster]


def return_panel(
    bars: pl.DataFrame, as_of: dt.date, history: int, min_history: int | None = None
) -> tuple[np.ndarray, list[str], dict[str, str]]:
    """``(returns T×N, tickers, skipped {ticker: reason})`` over the last ``history`` sessions to ``as_of``
    (fewer when fewer exist, but at least ``min_history``, default ``history``).

    Returns are :func:`~model_code.forecasting.returns.daily_log_returns`; a ticker is kept only if it has a finite return on every
    session of the window (a missing bar would make its return span two sessions).
    """
    rets = daily_log_returns(bars, as_of)
    sessions = rets["date"].unique().sort().tail(history)
    all_tickers = sorted(rets["ticker"].unique().to_list())
    need = history if min_history is None else min(min_history, history)
    if sessions.len() < need:
        reason = f"only {sessions.len()} sessions of returns up to {as_of}, needs {need}"
        return np.zeros((0, 0)), [], {t: reason for t in all_tickers}
    window = rets.filter(pl.col("date").is_in(sessions.implode()))
    counts = window.group_by("ticker").agg(pl.len().alias("n"), pl.col("date").max().alias("last"))
    full = (
        counts.filter((pl.col("n") == sessions.len()) & (pl.col("last") == as_of))["ticker"].sort().to_list()
    )
    skipped = {
        t: f"no finite return on every one of the last {sessions.len()} sessions to {as_of}"
        for t in all_tickers
        if t not in set(full)
    }
    if not full:
        return np.zeros((0, 0)), [], skipped
    wide = (
        window.filter(pl.col("ticker").is_in(full))
        .pivot(on="ticker", index="date", values="r")
        .sort("date")
        .select(full)
    )
    return wide.to_numpy().astype(np.float64), full, skipped


def forecast_panel(
    name: str,
    factory: PanelFactory,
    returns: np.ndarray,
    tickers: Sequence[str],
    skipped: Mapping[str, str],
    horizons: Sequence[int] = HORIZONS,
) -> list[TickerResult]:
    """One fit of a panel model, as per-ticker results; a failure is recorded for every ticker."""
    results = {t: TickerResult(t) for t in (*tickers, *skipped)}
    for ticker, reason in skipped.items():
        results[ticker].errors[name] = f"{name}: {reason}"
    if not tickers:
        return list(results.values())
    began = time.perf_counter()
    try:
        model = factory()
        diag = model.fit(returns, list(tickers))
        forecasts = model.forecast(horizons)
    except FitFailed as exc:
        for t in tickers:
            results[t].errors[name] = str(exc)
        return list(results.values())
    except Exception as exc:  # noqa: BLE001 - the panel model's bug must not sink the per-ticker models
        for t in tickers:
            results[t].errors[name] = f"{type(exc).__name__}: {exc}"
        return list(results.values())
    total = time.perf_counter() - began
    actions = getattr(model, "actions_", {})
    for t in tickers:
        params = {**diag.params, "panel_fit_seconds": round(total, 4)}
        if t in actions:
            params["action"] = actions[t]
        results[t].diagnostics.append(replace(diag, fit_seconds=total / len(tickers), params=params))
        results[t].forecasts.extend(forecasts[t])
    return list(results.values())


def merge_results(*groups: Iterable[TickerResult]) -> list[TickerResult]:
    """Per-ticker results of several runs combined into one result per ticker (first-seen order)."""
    merged: dict[str, TickerResult] = {}
    for group in groups:
        for res in group:
            into = merged.setdefault(res.ticker, TickerResult(res.ticker))
            into.forecasts.extend(res.forecasts)
            into.diagnostics.extend(res.diagnostics)
            into.errors.update(res.errors)
    return list(merged.values())


def forecast_tickers_and_panel(
    series: Mapping[str, np.ndarray],
    models: Mapping[str, ModelFactory],
    panel_models: Mapping[str, PanelFactory],
    panel: tuple[np.ndarray, Sequence[str], Mapping[str, str]],
    horizons: Sequence[int] = HORIZONS,
    *,
    workers: int | None = None,
) -> list[TickerResult]:
    """Per-ticker models in worker processes and panel models, merged per ticker.

    With worker processes the panel fits run in a thread of this process meanwhile (NumPy
    releases the GIL), so the cores are busy while the per-ticker pool drains instead of one
    idling through the panel fit afterwards. In-process (``workers == 1``) they run one after
    the other: warning capture is process-global and must not interleave with the ticker fits.
    """
    returns, tickers, skipped = panel

    def run_panels() -> list[list[TickerResult]]:
        with single_thread_blas():  # many small eigen-problems: BLAS threads only contend
            return [
                forecast_panel(name, factory, returns, tickers, skipped, horizons)
                for name, factory in panel_models.items()
            ]

    if not panel_models:
        return forecast_universe(series, models, horizons, workers=workers)
    if (workers or default_workers()) == 1 or len(series) < 2:
        return merge_results(forecast_universe(series, models, horizons, workers=1), *run_panels())
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="panel-fit") as pool:
        pending = pool.submit(run_panels)
        per_ticker = forecast_universe(series, models, horizons, workers=workers)
        return merge_results(per_ticker, *pending.result())
