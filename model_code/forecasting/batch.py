"""Fit and forecast many tickers in worker processes, one BLAS thread each.

Per-ticker work runs inside one orchestration step: ``forecast_universe`` fans the tickers out
over ``workers`` processes (joblib's loky backend, which reuses its workers between calls) and
collects one :class:`TickerResult` per ticker. A model that fails on a ticker is recorded with
its error and does not stop that ticker's other models, nor the other tickers.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from joblib import Parallel, delayed
from threadpoolctl import threadpool_limits

from model_code.forecasting.base import HORIZONS, FitDiagnostics, FitFailed, Forecast, Forecaster

ModelFactory = Callable[[], Forecaster]


@dataclass
class TickerResult:
    """Everything one ticker's fits produced."""

    ticker: str
    forecasts: list[Forecast] = field(default_factory=list)
    diagnostics: list[FitDiagnostics] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)


def forecast_ticker(
    ticker: str,
    returns: np.ndarray,
    models: Mapping[str, ModelFactory],
    horizons: Sequence[int] = HORIZONS,
) -> TickerResult:
    """Fit every model on one ticker's daily log returns and forecast ``horizons``."""
    result = TickerResult(ticker)
    with threadpool_limits(limits=1):
        for name, factory in models.items():
            try:
                model = factory()
                result.diagnostics.append(model.fit(returns))
                result.forecasts.extend(model.forecast(horizons))
            except FitFailed as exc:
                result.errors[name] = str(exc)
            except Exception as exc:  # noqa: BLE001 - one model's bug must not sink the batch
                result.errors[name] = f"{type(exc).__name__}: {exc}"
    return result


def default_workers() -> int:
    """All cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def forecast_universe(
    series: Mapping[str, np.ndarray],
    models: Mapping[str, ModelFactory],
    horizons: Sequence[int] = HORIZONS,
    *,
    workers: int | None = None,
) -> list[TickerResult]:
    """:func:`forecast_ticker` for every ticker, in ``workers`` processes (1 = in-process).

    ``models`` must be picklable (module-level classes or ``functools.partial`` of them).
    """
    workers = workers or default_workers()
    items = list(series.items())
    if workers == 1 or len(items) < 2:
        return [forecast_ticker(t, r, models, horizons) for t, r in items]
    # small batches: a ticker's fits take ~0.2 s, so 16 batches per worker keep the last one
    # short (no core idles long at the tail) while pickling stays negligible
    batch = max(1, len(items) // (workers * 16))
    return Parallel(n_jobs=workers, backend="loky", batch_size=batch)(
        delayed(forecast_ticker)(t, r, models, horizons) for t, r in items
    )
