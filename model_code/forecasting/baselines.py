"""Baseline forecasters that are always computable: a zero-return random walk and a drift.

Both treat daily log returns as i.i.d. with mean ``m`` and standard deviation ``s`` (units:
log return per session), so the cumulative ``h``-session return has variance ``h * s**2``.
Intervals are Gaussian. They need only ``MIN_OBS`` returns and never raise except for
non-finite or too-short input.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from model_code.forecasting.base import (
    HORIZONS,
    FitDiagnostics,
    FitFailed,
    FitState,
    Forecast,
    captured_fit,
    clean_returns,
    gaussian_forecast,
)

MIN_OBS = 20


class _IidBaseline:
    """Shared fit: sample mean and standard deviation of (the last ``window``) returns."""

    name = "baseline"

    def __init__(self, window: int | None = None) -> None:
        if window is not None and window < MIN_OBS:
            raise ValueError(f"window must be at least {MIN_OBS}, got {window}")
        self.window = window
        self.mean_: float | None = None
        self.std_: float | None = None
        self.n_: int = 0

    def fit(self, returns: np.ndarray) -> FitDiagnostics:
        """Estimate the daily mean and standard deviation (ddof=1) of log returns."""
        arr = clean_returns(returns, MIN_OBS, self.name)
        if self.window is not None:
            arr = arr[-self.window :]
        diag = FitDiagnostics(model=self.name, n_obs=int(arr.size))
        with captured_fit(diag):
            self.mean_ = float(arr.mean())
            self.std_ = float(arr.std(ddof=1))
            self.n_ = int(arr.size)
        diag.params = {"mean_daily": self.mean_, "std_daily": self.std_}
        return diag

    def state(self) -> FitState:
        """The fitted mean, std and count (no arrays)."""
        if self.std_ is None:
            raise FitFailed(f"{self.name}: state() called before a successful fit()")
        return FitState(self.name, self.n_, {"mean": self.mean_, "std": self.std_, "n": self.n_})

    def load_state(self, state: FitState) -> None:
        """Restore a stored fit."""
        self.mean_, self.std_, self.n_ = (
            float(state.params["mean"]),
            float(state.params["std"]),
            int(state.params["n"]),
        )

    def update(self, returns: np.ndarray, new: int) -> None:
        """Nothing to condition on: the i.i.d. moments are the fit's until it is refitted."""

    def _moments(self, horizon: int) -> tuple[float, float]:
        raise NotImplementedError

    def forecast(self, horizons: Sequence[int] = HORIZONS) -> list[Forecast]:
        """Gaussian forecasts of the cumulative log return for each horizon (sessions)."""
        if self.std_ is None:
            raise FitFailed(f"{self.name}: forecast() called before a successful fit()")
        out = []
        for h in horizons:
            if h < 1:
                raise ValueError(f"horizon must be >= 1, got {h}")
            mean, std = self._moments(int(h))
            out.append(gaussian_forecast(self.name, int(h), mean, std, vol=std))
        return out


class RandomWalk(_IidBaseline):
    """Zero expected return; std of the ``h``-session return is ``s * sqrt(h)``."""

    name = "random_walk"

    def _moments(self, horizon: int) -> tuple[float, float]:
        assert self.std_ is not None
        return 0.0, self.std_ * math.sqrt(horizon)


class Drift(_IidBaseline):
    """Mean ``m * h``; variance ``h * s**2 + h**2 * s**2 / n`` (noise plus the error of ``m``)."""

    name = "drift"

    def _moments(self, horizon: int) -> tuple[float, float]:
        assert self.std_ is not None and self.mean_ is not None
        var = horizon * self.std_**2 + horizon**2 * self.std_**2 / self.n_
        return self.mean_ * horizon, math.sqrt(var)
