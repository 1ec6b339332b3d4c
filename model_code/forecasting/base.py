"""The interface every statistical forecaster implements.

Unit convention: a model is fitted on a 1-D array of *daily log returns* of one ticker
(``log(adj_close_t / adj_close_{t-1})``), oldest first, ending at the ``as_of`` session. A
forecast for horizon ``h`` is the *cumulative* log return over the next ``h`` sessions
(``log(adj_close_{T+h} / adj_close_T)``), the same quantity as the target ``fwd_ret_{h}``, with
central 80 % and 95 % prediction intervals of that cumulative return and, where the model has
one, the forecast standard deviation of it (``vol_forecast``).

Fitting never prints: warnings are captured and counted into :class:`FitDiagnostics`. A fit
that did not converge raises :class:`FitFailed` so it is discarded, never used.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from model_code.horizons import HORIZONS

Z80 = 1.2815515655446004  # standard normal quantile 0.90
Z95 = 1.959963984540054  # standard normal quantile 0.975


class FitFailed(RuntimeError):
    """The model could not be fitted (did not converge, too little data); discard it."""


@dataclass(frozen=True)
class Forecast:
    """One model's forecast of the cumulative log return over ``horizon`` sessions."""

    model: str
    horizon: int
    yhat: float
    lower_80: float
    upper_80: float
    lower_95: float
    upper_95: float
    vol_forecast: float | None = None


@dataclass
class FitDiagnostics:
    """What happened while fitting: kept next to every forecast."""

    model: str
    n_obs: int
    fit_seconds: float = 0.0
    converged: bool = True
    warnings: int = 0
    warning_messages: list[str] = field(default_factory=list)
    params: dict[str, float | int | str] = field(default_factory=dict)
    notes: str | None = None


@dataclass
class FitState:
    """A fit's estimates, enough to forecast again without re-estimating (see :mod:`.stored`).

    ``params`` is JSON-safe (numbers, strings, lists; floats round-trip exactly through
    ``json``); ``arrays`` holds what is too large for a JSON column (an SSA basis), saved as an
    artifact. ``n_obs`` is the number of returns the fit used (ending at its window end).
    """

    model: str
    n_obs: int
    params: dict[str, Any] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)


@runtime_checkable
class Updatable(Protocol):
    """A forecaster whose fit can be stored and applied to later data with fixed estimates.

    ``state()`` after a successful ``fit``; ``load_state(state)`` then ``update(returns, new)``
    conditions the stored fit on ``returns`` (the daily log returns up to the forecast origin,
    oldest first; the last ``new`` of them are dated after the fit's window end) without
    re-estimating anything, after which ``forecast`` works as after ``fit``. With ``new == 0``
    and the fit's own returns, the forecasts are the fit's.
    """

    name: str

    def state(self) -> FitState: ...

    def load_state(self, state: FitState) -> None: ...

    def update(self, returns: np.ndarray, new: int) -> None: ...


@runtime_checkable
class Forecaster(Protocol):
    """Fit on daily log returns up to ``as_of``; forecast cumulative returns for horizons."""

    name: str

    def fit(self, returns: np.ndarray) -> FitDiagnostics:
        """Fit on ``returns`` (1-D, finite, oldest first). Raises :class:`FitFailed`."""
        ...

    def forecast(self, horizons: Sequence[int] = HORIZONS) -> list[Forecast]:
        """Forecasts for each horizon; only valid after a successful :meth:`fit`."""
        ...


def gaussian_forecast(
    model: str, horizon: int, mean: float, std: float, vol: float | None = None
) -> Forecast:
    """A forecast with normal 80/95 % intervals around ``mean`` with standard deviation ``std``."""
    return Forecast(
        model=model,
        horizon=horizon,
        yhat=float(mean),
        lower_80=float(mean - Z80 * std),
        upper_80=float(mean + Z80 * std),
        lower_95=float(mean - Z95 * std),
        upper_95=float(mean + Z95 * std),
        vol_forecast=None if vol is None else float(vol),
    )


@contextmanager
def captured_fit(diagnostics: FitDiagnostics) -> Iterator[FitDiagnostics]:
    """Time a fit (adding to ``fit_seconds``) and capture (count, keep the first few) its warnings."""
    began = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield diagnostics
        finally:
            diagnostics.fit_seconds += time.perf_counter() - began
            diagnostics.warnings += len(caught)
            diagnostics.warning_messages.extend(
                f"{w.category.__name__}: {w.message}"
                for w in caught[: max(0, 5 - len(diagnostics.warning_messages))]
            )


def check_horizons(horizons: Sequence[int]) -> list[int]:
    """``horizons`` as a list of positive ints, or ``ValueError`` naming them."""
    out = [int(h) for h in horizons]
    if not out or min(out) < 1:
        raise ValueError(f"horizons must be positive integers, got {list(horizons)}")
    return out


def clean_returns(returns: np.ndarray, min_obs: int, model: str) -> np.ndarray:
    """``returns`` as a finite float64 array, or :class:`FitFailed` naming what is wrong."""
    arr = np.asarray(returns, dtype=np.float64).ravel()
    if not np.isfinite(arr).all():
        raise FitFailed(f"{model}: returns contain NaN or infinite values")
    if arr.size < min_obs:
        raise FitFailed(f"{model}: needs at least {min_obs} returns, got {arr.size}")
    return arr
