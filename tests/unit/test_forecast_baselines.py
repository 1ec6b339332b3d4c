"""Random-walk and drift baselines: exact moments, Gaussian intervals, input checks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from model_code.forecasting.base import Z80, Z95, FitFailed, Forecaster
from model_code.forecasting.baselines import Drift, RandomWalk


def _returns(n: int = 250, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0005, 0.012, n)


def test_random_walk_is_zero_mean_with_sqrt_h_std() -> None:
    r = _returns()
    model = RandomWalk()
    assert isinstance(model, Forecaster)
    diag = model.fit(r)
    assert diag.n_obs == r.size and diag.warnings == 0
    s = r.std(ddof=1)
    for f in model.forecast((1, 5, 21, 63)):
        std = s * math.sqrt(f.horizon)
        assert f.model == "random_walk" and f.yhat == 0.0
        assert f.vol_forecast == pytest.approx(std)
        assert f.upper_80 == pytest.approx(Z80 * std) and f.lower_95 == pytest.approx(-Z95 * std)


def test_drift_adds_parameter_uncertainty_of_the_mean() -> None:
    r = _returns()
    model = Drift()
    model.fit(r)
    m, s, n = r.mean(), r.std(ddof=1), r.size
    for f in model.forecast((1, 63)):
        h = f.horizon
        std = math.sqrt(h * s**2 + h**2 * s**2 / n)
        assert f.yhat == pytest.approx(m * h)
        assert f.vol_forecast == pytest.approx(std)
        assert f.upper_95 - f.lower_95 == pytest.approx(2 * Z95 * std)
        assert f.upper_95 - f.lower_95 > f.upper_80 - f.lower_80 > 0


def test_window_uses_only_the_latest_returns() -> None:
    r = np.r_[np.full(100, 0.05), _returns(40)]
    model = Drift(window=40)
    model.fit(r)
    assert model.forecast((1,))[0].yhat == pytest.approx(r[-40:].mean())


@pytest.mark.parametrize("cls", [RandomWalk, Drift])
def test_bad_input_raises_fit_failed(cls) -> None:
    r = _returns(50)
    r[7] = np.nan
    with pytest.raises(FitFailed, match="NaN"):
        cls().fit(r)
    with pytest.raises(FitFailed, match="at least 20"):
        cls().fit(_returns(10))
    with pytest.raises(FitFailed, match="before a successful fit"):
        cls().forecast()
