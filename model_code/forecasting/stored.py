"""Stored statistical fits: estimate on a cadence, apply every night with the estimates fixed.

A fit of one model on one ticker's daily log returns is a :class:`StoredFit`: the returns'
window (``window_start``..``window_end``, dates of the first and last return), when it was fitted,
its :class:`~model_code.forecasting.base.FitState` (JSON params; large arrays such as an SSA basis
as an artifact under ``$PM_HOME/models/fits/``) and the fit's diagnostics. Rows live in
``models.fits`` (natural key ticker, model, window_end).

The production policy, one rule for the nightly asset and the walk-forward
(:func:`forecast_as_of_stored`): at ``as_of`` every (ticker, model) uses the latest fit whose
window ends on or before ``as_of``, conditioned on the returns up to ``as_of`` without
re-estimating (:class:`~model_code.forecasting.base.Updatable`: ARIMA's Kalman filter with fixed
coefficients, the GARCH variance recursion with fixed parameters, SSA/SAMOSSA/MSSA-RL projection
on the stored basis with fixed residual AR). A (ticker, model) with no such fit, or whose fit is
more than ``max_age`` sessions old (returns dated after its window end), is fitted on the spot
and the new fit is returned for storing; its forecasts are then exactly a full refit's. The
``forecasts/fits`` asset refits on a cadence or on request (:func:`refit_universe`).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from joblib import Parallel, delayed
from threadpoolctl import threadpool_limits

from model_code.forecasting.array_backend import single_thread_blas
from model_code.forecasting.base import HORIZONS, FitDiagnostics, FitFailed, FitState
from model_code.forecasting.batch import ModelFactory, TickerResult, default_workers
from model_code.forecasting.panel import PanelFactory, forecast_panel, merge_results, return_panel
from model_code.forecasting.returns import daily_log_returns
from model_code.market_data.calendar import TradingCalendar

FIT_DIR = Path("models") / "fits"  # under $PM_HOME
ARTIFACT_FAMILY = "stored_fit"
ARRAYS_FILE = "arrays.npz"
DEFAULT_MAX_AGE = 21  # sessions: an older fit is refitted before it is used
RETRY_NOTE = (
    "no usable stored fit and fitting failed on a recent session; the next forecasts/fits refit retries it"
)
FITS_SCHEMA: dict[str, pl.DataType] = {
    "ticker": pl.String(),
    "model": pl.String(),
    "fitted_at": pl.Datetime("us"),
    "window_start": pl.Date(),
    "window_end": pl.Date(),
    "n_obs": pl.Int64(),
    "params": pl.String(),
    "diagnostics": pl.String(),
    "artifact_path": pl.String(),
}
UpdaterFactory = Callable[[], Any]  # builds an Updatable (load_state / update / forecast)


@dataclass
class StoredFit:
    """One (ticker, model) fit: its data window, estimates and diagnostics (``models.fits``)."""

    ticker: str
    model: str
    window_start: dt.date
    window_end: dt.date
    fitted_at: dt.datetime
    state: FitState
    diagnostics: dict[str, Any] = field(default_factory=dict)
    artifact_path: str | None = None  # relative to $PM_HOME; arrays loaded on use when set


class FitStore:
    """Fits by (ticker, model), each list ordered by window end; a later add of the same window
    end replaces the earlier (the natural key)."""

    def __init__(self, fits: Iterable[StoredFit] = ()) -> None:
        self._fits: dict[tuple[str, str], dict[dt.date, StoredFit]] = {}
        for fit in fits:
            self.add(fit)

    def add(self, fit: StoredFit) -> None:
        self._fits.setdefault((fit.ticker, fit.model), {})[fit.window_end] = fit

    def latest(self, ticker: str, model: str, as_of: dt.date) -> StoredFit | None:
        """The fit with the latest window end on or before ``as_of`` (never one ending after it)."""
        fits = self._fits.get((ticker, model), {})
        ends = [d for d in fits if d <= as_of]
        return fits[max(ends)] if ends else None

    def keep_latest(self) -> None:
        """Drop every fit but the latest per (ticker, model): enough when origins only advance."""
        for key, by_end in self._fits.items():
            last = max(by_end)
            self._fits[key] = {last: by_end[last]}

    def __iter__(self):
        for by_end in self._fits.values():
            yield from by_end.values()

    def __len__(self) -> int:
        return sum(len(v) for v in self._fits.values())


def fit_age(fit: StoredFit, dates: np.ndarray) -> int:
    """Sessions of the ticker's returns dated after the fit's window end (0 on the fit's day)."""
    return int((dates > np.datetime64(fit.window_end, "D")).sum())


# --------------------------------------------------------------------------- artifacts


def artifact_relpath(fit: StoredFit) -> str:
    """``models/fits/<model>/<ticker>/<window_end>`` (the natural key, so a rerun overwrites it)."""
    safe = fit.ticker.replace("/", "_")
    return str(FIT_DIR / fit.model / safe / fit.window_end.isoformat())


def save_artifacts(fits: Iterable[StoredFit], home: Path) -> list[StoredFit]:
    """Write each fit's arrays (if any) as an artifact folder (``meta.json`` + ``arrays.npz``)
    under ``home``; the fits come back with ``artifact_path`` set (relative to ``home``)."""
    from model_code.ml.artifacts import write_meta

    out = []
    for fit in fits:
        if not fit.state.arrays:
            out.append(fit)
            continue
        rel = artifact_relpath(fit)
        folder = home / rel
        write_meta(
            folder,
            {
                "family": ARTIFACT_FAMILY,
                "params": {"model": fit.model, "ticker": fit.ticker, "window_end": str(fit.window_end)},
                "arrays": sorted(fit.state.arrays),
            },
        )
        np.savez(folder / ARRAYS_FILE, **fit.state.arrays)
        out.append(replace(fit, artifact_path=rel))
    return out


def load_arrays(fit: StoredFit, home: Path) -> FitState:
    """The fit's state with its arrays read from its artifact (as is when it has none)."""
    if fit.state.arrays or not fit.artifact_path:
        return fit.state
    with np.load(home / fit.artifact_path / ARRAYS_FILE) as data:
        arrays = {k: data[k] for k in data.files}
    return replace(fit.state, arrays=arrays)


# --------------------------------------------------------------------------- warehouse layout


def fits_frame(fits: Iterable[StoredFit]) -> pl.DataFrame:
    """Fits in the ``models.fits`` layout (params and diagnostics as JSON text)."""
    rows = [
        {
            "ticker": f.ticker,
            "model": f.model,
            "fitted_at": f.fitted_at,
            "window_start": f.window_start,
            "window_end": f.window_end,
            "n_obs": f.state.n_obs,
            "params": json.dumps(f.state.params),
            "diagnostics": json.dumps(f.diagnostics, default=str),
            "artifact_path": f.artifact_path,
        }
        for f in fits
    ]
    return pl.DataFrame(rows, schema=FITS_SCHEMA)


def fits_from_frame(frame: pl.DataFrame) -> list[StoredFit]:
    """``models.fits`` rows as fits (arrays not loaded: :func:`load_arrays` reads them on use)."""
    return [
        StoredFit(
            r["ticker"],
            r["model"],
            r["window_start"],
            r["window_end"],
            r["fitted_at"],
            FitState(r["model"], int(r["n_obs"]), json.loads(r["params"])),
            json.loads(r["diagnostics"]) if r["diagnostics"] else {},
            r["artifact_path"],
        )
        for r in frame.iter_rows(named=True)
    ]


# --------------------------------------------------------------------------- per-ticker work


def dated_return_series(
    bars: pl.DataFrame, as_of: dt.date, history: int
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per ticker with a bar on ``as_of``: its last ``history`` daily log returns and their dates
    (``datetime64[D]``), the input of :func:`~model_code.forecasting.predictions.return_series`."""
    rets = daily_log_returns(bars, as_of)
    live = rets.group_by("ticker").agg(pl.col("date").max().alias("last")).filter(pl.col("last") == as_of)
    rets = (
        rets.join(live.select("ticker"), on="ticker")
        .group_by("ticker", maintain_order=True)
        .agg(pl.col("r").tail(history), pl.col("date").tail(history))
    )
    return {
        t: (np.asarray(r, dtype=np.float64), np.asarray(d, dtype="datetime64[D]"))
        for t, r, d in rets.iter_rows()
    }


def _as_date(d: np.datetime64) -> dt.date:
    return dt.date.fromisoformat(str(d))


def _new_fit(ticker: str, model: str, state: FitState, dates: np.ndarray, diag: FitDiagnostics) -> StoredFit:
    start = dates[dates.size - state.n_obs] if 0 < state.n_obs <= dates.size else dates[0]
    return StoredFit(
        ticker,
        model,
        _as_date(start),
        _as_date(dates[-1]),
        dt.datetime.now(dt.UTC).replace(tzinfo=None),
        state,
        asdict(diag),
    )


def _applied(diag_model: str, n_obs: int, seconds: float, fit: StoredFit, age: int) -> FitDiagnostics:
    return FitDiagnostics(
        model=diag_model,
        n_obs=n_obs,
        fit_seconds=seconds,
        params={"stored_fit": True, "fit_window_end": str(fit.window_end), "fit_age": age},
    )


def ticker_from_fits(
    ticker: str,
    returns: np.ndarray,
    dates: np.ndarray,
    fits: Mapping[str, StoredFit | None],
    models: Mapping[str, ModelFactory],
    updaters: Mapping[str, UpdaterFactory],
    horizons: Sequence[int],
    max_age: int,
    home: Path,
    failed: Collection[str] = (),
) -> tuple[TickerResult, list[StoredFit]]:
    """One ticker under the production policy: each model in ``updaters`` applies its stored fit
    (``fits[name]``) when it has one at most ``max_age`` sessions old; otherwise the per-ticker
    models in ``models`` are fitted here (and returned as new fits), unless ``failed`` names the
    model (its fit failed on a recent session: only the scheduled refit retries it). A panel model
    without a usable fit is left out: its refit needs the whole panel (:func:`forecast_as_of_stored`)."""
    result, fresh = TickerResult(ticker), []
    with single_thread_blas():  # one cached controller: threadpool_limits() rescans libraries per call
        for name, make in updaters.items():
            fit = fits.get(name)
            age = fit_age(fit, dates) if fit is not None else None
            if fit is not None and age is not None and age <= max_age:
                began = time.perf_counter()
                try:
                    model = make()
                    model.load_state(load_arrays(fit, home))
                    model.update(returns, age)
                    forecasts = model.forecast(horizons)
                except Exception as exc:  # noqa: BLE001 - a bad stored fit is refitted, never fatal
                    if name not in models:
                        result.errors[name] = f"stored fit unusable: {type(exc).__name__}: {exc}"
                        continue
                else:
                    seconds = time.perf_counter() - began
                    result.diagnostics.append(_applied(name, int(returns.size), seconds, fit, age))
                    result.forecasts.extend(forecasts)
                    continue
            if name not in models:
                continue
            if name in failed:
                result.errors[name] = f"{name}: {RETRY_NOTE}"
                continue
            try:
                model = models[name]()
                diag = model.fit(returns)
                forecasts = model.forecast(horizons)
                fresh.append(_new_fit(ticker, name, model.state(), dates, diag))
            except FitFailed as exc:
                result.errors[name] = str(exc)
                continue
            except Exception as exc:  # noqa: BLE001 - one model's bug must not sink the batch
                result.errors[name] = f"{type(exc).__name__}: {exc}"
                continue
            diag.params = {**diag.params, "stored_fit": False, "fit_window_end": str(dates[-1]), "fit_age": 0}
            result.diagnostics.append(diag)
            result.forecasts.extend(forecasts)
    return result, fresh


def _in_workers(fn: Callable[..., Any], calls: list[tuple], workers: int | None) -> list[Any]:
    """``fn(*args)`` for each call, in ``workers`` loky processes (in-process for 1 or one call)."""
    workers = workers or default_workers()
    if workers == 1 or len(calls) < 2:
        return [fn(*args) for args in calls]
    batch = max(1, len(calls) // (workers * 16))
    return Parallel(n_jobs=workers, backend="loky", batch_size=batch)(delayed(fn)(*args) for args in calls)


def _panel_refit(
    name: str,
    factory: PanelFactory,
    bars: pl.DataFrame,
    as_of: dt.date,
    tickers: Sequence[str],
    series: Mapping[str, tuple[np.ndarray, np.ndarray]],
    history: int,
    min_history: int,
    horizons: Sequence[int],
) -> tuple[list[TickerResult], list[StoredFit]]:
    """One fit of a panel model on the universe panel at ``as_of``: results and fits for ``tickers``."""
    returns, panel_tickers, skipped = return_panel(bars, as_of, history, min_history)
    keep = [i for i, t in enumerate(panel_tickers) if t in series]
    built: list[Any] = []

    def make() -> Any:
        built.append(factory())
        return built[-1]

    results = forecast_panel(
        name,
        make,
        returns[:, keep] if keep else np.zeros((0, 0)),
        [panel_tickers[i] for i in keep],
        {t: why for t, why in skipped.items() if t in series},
        horizons,
    )
    wanted = set(tickers)
    states = built[-1].states() if built and getattr(built[-1], "_routes", None) else {}
    fits = []
    for res in results:
        if res.ticker not in wanted:
            continue
        for d in res.diagnostics:
            d.params = {**d.params, "stored_fit": False, "fit_window_end": str(as_of), "fit_age": 0}
            if res.ticker in states:
                fits.append(_new_fit(res.ticker, name, states[res.ticker], series[res.ticker][1], d))
    return [r for r in results if r.ticker in wanted], fits


def forecast_as_of_stored(
    bars: pl.DataFrame,
    as_of: dt.date,
    models: Mapping[str, ModelFactory],
    store: FitStore,
    *,
    home: Path,
    panel_models: Mapping[str, PanelFactory] | None = None,
    updaters: Mapping[str, UpdaterFactory] | None = None,
    max_age: int = DEFAULT_MAX_AGE,
    history: int = 1000,
    min_history: int = 252,
    horizons: Sequence[int] = HORIZONS,
    workers: int | None = None,
    calendar: TradingCalendar | None = None,
    failed: Collection[tuple[str, str]] = (),
) -> tuple[list[TickerResult], dict[int, dt.date], list[StoredFit]]:
    """Forecasts at ``as_of`` from stored fits (module docstring), and the fits made on the way.

    Point in time: only returns dated <= ``as_of`` are read from ``bars``, and ``store.latest``
    never returns a fit whose window ends after ``as_of``.
    ``updaters`` maps every model name (per-ticker and panel) to the class that applies its
    stored fits (:func:`~model_code.forecasting.catalog.updaters`). ``failed``: (ticker, model)
    pairs whose fitting failed on a recent session (their ``forecasts.fit_log`` errors): without a
    usable fit they are not fitted again here, each night, but left to the scheduled refit (a fit
    that keeps failing would otherwise cost its full, often slowest, optimisation every night).
    """
    from model_code.forecasting.catalog import updaters as default_updaters
    from model_code.forecasting.predictions import target_dates

    panel_models = panel_models or {}
    names = [*models, *panel_models]
    updaters = dict(updaters or default_updaters(names))
    series = {
        t: rd for t, rd in dated_return_series(bars, as_of, history).items() if rd[0].size >= min_history
    }
    latest = {t: {n: store.latest(t, n, as_of) for n in names} for t in series}
    failed_by: dict[str, set[str]] = {}
    for t, name in failed:
        failed_by.setdefault(t, set()).add(name)
    calls = [
        (t, r, d, latest[t], models, updaters, horizons, max_age, home, failed_by.get(t, set()))
        for t, (r, d) in series.items()
    ]
    done = _in_workers(ticker_from_fits, calls, workers)
    results = [res for res, _ in done]
    fresh = [f for _, fits in done for f in fits]
    for name, factory in panel_models.items():
        due = [
            t
            for t, res in zip(series, results, strict=True)
            if not any(d.model == name for d in res.diagnostics)
            and name not in res.errors
            and name not in failed_by.get(t, ())
        ]
        if due:
            panel_results, panel_fits = _panel_refit(
                name, factory, bars, as_of, due, series, history, min_history, horizons
            )
            results = merge_results(results, panel_results)
            fresh += panel_fits
        results = [_note_skipped_panel(res, name, failed_by) for res in results]
    return results, target_dates(as_of, horizons, calendar), fresh


def _note_skipped_panel(res: TickerResult, name: str, failed_by: Mapping[str, set[str]]) -> TickerResult:
    """A panel model left out for a recent failure gets the same error a per-ticker one does."""
    skipped = name in failed_by.get(res.ticker, ()) and name not in res.errors
    if skipped and not any(d.model == name for d in res.diagnostics):
        res.errors[name] = f"{name}: {RETRY_NOTE}"
    return res


def failures(results: Iterable[TickerResult]) -> set[tuple[str, str]]:
    """(ticker, model) pairs that produced no forecast (their error) in ``results``."""
    return {(r.ticker, m) for r in results for m in r.errors}


# --------------------------------------------------------------------------- refits


def fit_ticker_states(
    ticker: str, returns: np.ndarray, dates: np.ndarray, models: Mapping[str, ModelFactory]
) -> tuple[list[StoredFit], dict[str, str]]:
    """Fit ``models`` on one ticker's returns: the new fits, and the error of each that failed."""
    fits, errors = [], {}
    with threadpool_limits(limits=1):
        for name, factory in models.items():
            try:
                model = factory()
                diag = model.fit(returns)
                fits.append(_new_fit(ticker, name, model.state(), dates, diag))
            except Exception as exc:  # noqa: BLE001 - recorded, the other fits go on
                errors[name] = str(exc) if isinstance(exc, FitFailed) else f"{type(exc).__name__}: {exc}"
    return fits, errors


def due_fits(
    store: FitStore,
    series: Mapping[str, tuple[np.ndarray, np.ndarray]],
    names: Sequence[str],
    as_of: dt.date,
    min_age: int,
) -> dict[str, list[str]]:
    """Per model, the tickers whose latest fit (window end <= ``as_of``) is at least ``min_age``
    sessions old, or that have none: what a scheduled refit refits."""
    out: dict[str, list[str]] = {}
    for name in names:
        due = []
        for t, (_, dates) in series.items():
            fit = store.latest(t, name, as_of)
            if fit is None or fit_age(fit, dates) >= min_age:
                due.append(t)
        if due:
            out[name] = due
    return out


def refit_universe(
    bars: pl.DataFrame,
    as_of: dt.date,
    requested: Mapping[str, Sequence[str]],
    models: Mapping[str, ModelFactory],
    panel_models: Mapping[str, PanelFactory] | None = None,
    *,
    history: int = 1000,
    min_history: int = 252,
    workers: int | None = None,
) -> tuple[list[StoredFit], dict[tuple[str, str], str]]:
    """Fit exactly ``requested`` (model -> tickers) on the returns up to ``as_of``.

    Tickers without enough history (or no bar on ``as_of``) are reported as errors. A panel model
    is fitted once on the universe panel and stored for the requested tickers only.
    """
    panel_models = panel_models or {}
    series = {
        t: rd for t, rd in dated_return_series(bars, as_of, history).items() if rd[0].size >= min_history
    }
    errors: dict[tuple[str, str], str] = {}
    per_ticker: dict[str, dict[str, ModelFactory]] = {}
    for name, tickers in requested.items():
        for t in tickers:
            if t not in series:
                errors[(t, name)] = f"no {min_history} returns up to {as_of} with a bar on {as_of}"
            elif name in models:
                per_ticker.setdefault(t, {})[name] = models[name]
    calls = [(t, *series[t], wanted) for t, wanted in per_ticker.items()]
    fits: list[StoredFit] = []
    for (t, *_), (made, failed) in zip(calls, _in_workers(fit_ticker_states, calls, workers), strict=True):
        fits += made
        errors.update({(t, n): e for n, e in failed.items()})
    for name, factory in panel_models.items():
        wanted = [t for t in requested.get(name, ()) if t in series]
        if wanted:
            results, made = _panel_refit(
                name, factory, bars, as_of, wanted, series, history, min_history, HORIZONS
            )
            fits += made
            errors.update({(r.ticker, name): e for r in results for n, e in r.errors.items() if n == name})
    return fits, errors
