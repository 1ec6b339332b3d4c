"""ARIMA forecasters on synthetic series with known structure (and one real series)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from model_code.forecasting.arima import (
    Arima,
    Sarimax,
    _fit_problem,
    cumulative_variance,
    invertible_ma,
    library_default_sarimax_grid,
    psi_weights,
)
from model_code.forecasting.base import Z80, Z95, FitFailed, Forecaster
from tests.conftest import shared_log_returns


@pytest.fixture(autouse=True)
def _one_blas_thread():
    """As in production (``batch.forecast_ticker``): tiny state-space matrices, one BLAS thread."""
    with threadpool_limits(limits=1):
        yield


def _arma(n: int, phi: float, theta: float, sigma: float = 0.01, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    e = rng.normal(0.0, sigma, n + 200)
    x = np.zeros(n + 200)
    for t in range(1, n + 200):
        x[t] = phi * x[t - 1] + e[t] + theta * e[t - 1]
    return x[200:]


def test_psi_weights_and_cumulative_variance_closed_forms() -> None:
    assert psi_weights(np.array([0.5]), np.zeros(0), 5) == pytest.approx(0.5 ** np.arange(5))
    assert psi_weights(np.zeros(0), np.array([0.4]), 4) == pytest.approx([1.0, 0.4, 0.0, 0.0])
    assert cumulative_variance(np.zeros(0), np.zeros(0), 2.0, (1, 5, 63)) == pytest.approx([2.0, 10.0, 126.0])
    # AR(1): Var(S_2) = sigma2 * (1 + (1 + phi)**2)
    assert cumulative_variance(np.array([0.5]), np.zeros(0), 1.0, (2,))[0] == pytest.approx(1 + 1.5**2)
    theta, s2 = invertible_ma(np.array([2.0]), 1.0)
    assert theta == pytest.approx([0.5]) and s2 == pytest.approx(4.0)


def test_ar1_recovers_phi_and_one_step_forecast() -> None:
    y = _arma(1000, 0.5, 0.0, seed=3)
    model = Arima(ic="bic")
    assert isinstance(model, Forecaster)
    diag = model.fit(y)
    assert model.order == (1, 0, 0) and diag.converged and diag.n_obs == 1000
    phi, mu = diag.params["ar1"], float(diag.params.get("intercept", 0.0))
    assert phi == pytest.approx(0.5, abs=0.08)
    f1 = model.forecast((1,))[0]
    assert f1.yhat == pytest.approx(mu + phi * (y[-1] - mu), rel=1e-9, abs=1e-12)
    assert f1.yhat == pytest.approx(0.5 * y[-1], abs=0.1 * abs(y[-1]) + 1e-4)
    assert f1.vol_forecast == pytest.approx(math.sqrt(diag.params["sigma2"]))


def test_cumulative_variance_matches_monte_carlo_of_fitted_arma() -> None:
    y = _arma(1000, 0.6, 0.3, seed=5)
    model = Arima()
    model.fit(y)
    m = model.model_
    p, d, q = model.order
    assert d == 0 and p + q >= 1
    ar, ma = np.asarray(m["model"]["phi"]), np.asarray(m["model"]["theta"])
    assert np.all(np.abs(np.roots(np.r_[ma[::-1], 1.0])) > 1.0) if ma.size else True
    mu, sigma = float(m["coef"].get("intercept", 0.0)), math.sqrt(model.sigma2_)
    hmax, n_paths = 21, 20000
    rng = np.random.default_rng(11)
    past_x = np.tile(y[-8:] - mu, (n_paths, 1))
    past_e = np.tile(np.asarray(m["residuals"])[-8:], (n_paths, 1))
    x, e = past_x, past_e
    for _ in range(hmax):
        shock = rng.normal(0.0, sigma, n_paths)
        new = shock + sum(ar[i] * x[:, -1 - i] for i in range(ar.size))
        new = new + sum(ma[j] * e[:, -1 - j] for j in range(ma.size))
        x, e = np.column_stack([x, new]), np.column_stack([e, shock])
    sims = np.cumsum(x[:, -hmax:] + mu, axis=1)
    for f in model.forecast((1, 5, 21)):
        s = sims[:, f.horizon - 1]
        assert s.var() == pytest.approx(f.vol_forecast**2, rel=0.04)
        assert s.mean() == pytest.approx(f.yhat, abs=4 * s.std() / math.sqrt(n_paths))
    # the covariances matter: the naive sum of per-step variances is far too small
    naive = model.sigma2_ * np.cumsum(np.cumsum(psi_weights(model.ar_, model.ma_, hmax) ** 2))[-1]
    assert naive < 0.5 * sims[:, -1].var()


def test_white_noise_picks_near_white_model_and_intervals_cover() -> None:
    rng = np.random.default_rng(21)
    series = rng.normal(0.0, 0.01, 250 * 12)
    hits = {(h, lvl): [] for h in (1, 5) for lvl in (80, 95)}
    for origin in range(250, series.size + 1, 250):  # 12 origins, non-overlapping histories
        model = Arima()
        model.fit(series[origin - 250 : origin])
        p, d, q = model.order
        assert d == 0 and p + q <= 1
        assert np.abs(psi_weights(model.ar_, model.ma_, 10)[1:]).max() < 0.2  # effectively white
        future = np.cumsum(rng.normal(0.0, 0.01, (500, 5)), axis=1)
        for f in model.forecast((1, 5)):
            out = future[:, f.horizon - 1]
            hits[(f.horizon, 80)].append(np.mean((out >= f.lower_80) & (out <= f.upper_80)))
            hits[(f.horizon, 95)].append(np.mean((out >= f.lower_95) & (out <= f.upper_95)))
    for (_, lvl), values in hits.items():
        assert 100 * np.mean(values) == pytest.approx(lvl, abs=5)


def test_sarimax_recovers_exog_effect_and_needs_future_exog() -> None:
    rng = np.random.default_rng(8)
    n = 400
    x = rng.normal(0.0, 1.0, (n + 10, 1))
    y = 0.004 * x[:n, 0] + _arma(n, 0.3, 0.0, seed=9)
    model = Sarimax(order=(1, 0, 0))
    diag = model.fit(y, exog=x[:n])
    assert diag.converged and diag.params["x1"] == pytest.approx(0.004, abs=0.0015)
    base = model.forecast((1, 5), exog_future=x[n:])
    shifted = model.forecast((1, 5), exog_future=x[n:] + 1.0)
    for b, s in zip(base, shifted, strict=True):
        assert s.yhat - b.yhat == pytest.approx(diag.params["x1"] * b.horizon, rel=1e-6)
        assert s.vol_forecast == pytest.approx(b.vol_forecast)
        assert b.upper_95 - b.lower_95 == pytest.approx(2 * Z95 * b.vol_forecast)
    with pytest.raises(ValueError, match="exog_future"):
        model.forecast((1,))
    with pytest.raises(ValueError, match="needs 5"):
        model.forecast((5,), exog_future=x[n : n + 2])
    bad = x[:n].copy()
    bad[3, 0] = np.inf
    with pytest.raises(FitFailed, match="exog"):
        Sarimax().fit(y, exog=bad)


def test_non_finite_input_and_unconverged_fit_raise_fit_failed() -> None:
    y = _arma(200, 0.2, 0.0)
    y[50] = np.nan
    for model in (Arima(), Sarimax()):
        with pytest.raises(FitFailed, match="NaN or infinite"):
            model.fit(y)
    with pytest.raises(FitFailed, match="at least 60"):
        Arima().fit(np.zeros(10))
    fake = {"code": 1, "sigma2": 1.0, "coef": {}, "model": {"phi": np.zeros(0)}}
    assert "did not converge" in _fit_problem(fake)
    assert "not stationary" in _fit_problem({**fake, "code": 0, "model": {"phi": np.array([1.2])}})
    with pytest.raises(ValueError, match="ic"):
        Arima(ic="hqic")
    tiny = _arma(120, 0.3, 0.2, seed=2) * 1e-3  # badly scaled: statsmodels' MLE stalls
    with pytest.raises(FitFailed, match="did not converge"):
        Sarimax(order=(2, 0, 2)).fit(tiny)


def test_no_warning_escapes_and_library_grid_runs() -> None:
    y = _arma(250, 0.3, 0.2, seed=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        arima, sarimax = Arima(), Sarimax(order=(2, 0, 2))
        diags = [arima.fit(y), sarimax.fit(y)]
        arima.forecast()
        sarimax.forecast()
        grid = library_default_sarimax_grid(y, horizons=(1, 5))
    # CSS-ranked candidates may warn (statsforecast "possible convergence problem"): counted, kept
    assert diags[0].converged and (diags[0].warnings == 0) == (not diags[0].warning_messages)
    assert diags[1].warnings >= 1 and "EstimationWarning" in diags[1].warning_messages[0]
    assert grid.n_fits == 9 and grid.order[1] == 0 and set(grid.mean_by_horizon) == {1, 5}
    assert grid.warnings >= 0 and len(grid.warning_messages) <= 5


@pytest.mark.shared_data
def test_real_series_aapl(shared_parquet) -> None:
    returns = shared_log_returns(shared_parquet, "AAPL", through_year=2018)
    model = Arima()
    model.fit(returns)
    for f in model.forecast():
        values = [f.yhat, f.lower_80, f.upper_80, f.lower_95, f.upper_95, f.vol_forecast]
        assert all(math.isfinite(v) for v in values)
        assert f.upper_95 - f.lower_95 > f.upper_80 - f.lower_80 > 0
        assert f.upper_80 - f.lower_80 == pytest.approx(2 * Z80 * f.vol_forecast)
