"""GARCH-family forecasters on simulated GARCH data with known parameters (and one real series)."""

from __future__ import annotations

import math
import warnings
from functools import cache

import numpy as np
import pytest
from scipy import stats
from threadpoolctl import threadpool_limits

from model_code.forecasting.base import FitFailed, Forecaster
from model_code.forecasting.garch import VARIANTS, Garch, exact_linear_constraints, library_default_garch
from tests.conftest import shared_log_returns


@pytest.fixture(autouse=True)
def _one_blas_thread():
    with threadpool_limits(limits=1):
        yield


@cache
def _simulate(
    n: int, omega: float, alpha: float, beta: float, nu: float, gamma: float = 0.0, seed: int = 0
) -> np.ndarray:
    """GJR-GARCH(1,1) log returns (decimal) with standardized Student-t shocks; params in percent**2."""
    rng = np.random.default_rng(seed)
    z = rng.standard_t(nu, n + 500) * math.sqrt((nu - 2) / nu)
    s2 = omega / (1 - alpha - beta - gamma / 2)
    eps = np.zeros(n + 500)
    for t in range(n + 500):
        eps[t] = math.sqrt(s2) * z[t]
        s2 = omega + (alpha + gamma * (eps[t] < 0)) * eps[t] ** 2 + beta * s2
    return (0.03 + eps[500:]) / 100.0


def test_garch_recovers_parameters_and_analytic_cumulative_variance() -> None:
    r = _simulate(3000, 0.02, 0.08, 0.90, 6.0, seed=1)
    model = Garch("garch")
    assert isinstance(model, Forecaster)
    diag = model.fit(r)
    p = model.params_
    assert diag.converged and diag.warnings == 0 and diag.params["scale"] == 100.0
    assert p["omega"] == pytest.approx(0.02, abs=0.015)
    assert p["alpha[1]"] == pytest.approx(0.08, abs=0.035)
    assert p["beta[1]"] == pytest.approx(0.90, abs=0.045)
    assert p["alpha[1]"] + p["beta[1]"] == pytest.approx(0.98, abs=0.02)
    assert p["nu"] == pytest.approx(6.0, abs=2.0)
    # h-step variance of the cumulative return = sum of the analytic GARCH(1,1) step variances
    res = model.result_
    s2 = p["omega"] + p["alpha[1]"] * res.resid[-1] ** 2 + p["beta[1]"] * res.conditional_volatility[-1] ** 2
    steps = [s2]
    for _ in range(62):
        steps.append(p["omega"] + (p["alpha[1]"] + p["beta[1]"]) * steps[-1])
    unit = math.sqrt((p["nu"] - 2) / p["nu"])
    for f in model.forecast((1, 5, 21, 63)):
        std = math.sqrt(sum(steps[: f.horizon])) / 100
        assert f.vol_forecast == pytest.approx(std, rel=1e-6)
        assert f.yhat == pytest.approx(p["mu"] / 100 * f.horizon)
        assert f.upper_95 - f.yhat == pytest.approx(stats.t.ppf(0.975, p["nu"]) * unit * std, rel=1e-9)
        assert f.yhat - f.lower_80 == pytest.approx(stats.t.ppf(0.90, p["nu"]) * unit * std, rel=1e-9)


def test_gjr_recovers_asymmetry_sign() -> None:
    r = _simulate(3000, 0.02, 0.02, 0.88, 6.0, gamma=0.15, seed=2)
    model = Garch("gjr")
    model.fit(r)
    assert model.params_["gamma[1]"] > 0.05
    assert model.params_["gamma[1]"] > model.params_["alpha[1]"]


def test_egarch_vol_positive_increasing_and_reproducible() -> None:
    r = _simulate(1500, 0.02, 0.08, 0.90, 6.0, seed=3)
    model = Garch("egarch", simulations=500)
    diag = model.fit(r)
    assert diag.converged and set(model.params_) >= {"omega", "alpha[1]", "gamma[1]", "beta[1]", "nu"}
    first = model.forecast()
    vols = [f.vol_forecast for f in first]
    assert all(v > 0 and math.isfinite(v) for v in vols)
    assert all(a < b for a, b in zip(vols, vols[1:], strict=False))
    assert model.forecast() == first  # seeded simulation
    daily = r.std()
    assert 0.3 * daily < vols[0] < 3 * daily


def test_warm_start_converges_faster_to_the_same_params() -> None:
    r = _simulate(2000, 0.02, 0.08, 0.90, 6.0, seed=4)
    for variant in ("garch", "gjr"):
        yesterday = Garch(variant)
        yesterday.fit(r[:-5])
        cold, warm = Garch(variant), Garch(variant)
        cold_diag = cold.fit(r)
        warm_diag = warm.fit(r, warm_start=yesterday.params_)
        assert warm_diag.params["warm_start"] is True
        assert warm_diag.params["nfev"] <= cold_diag.params["nfev"]
        for key, value in cold.params_.items():
            assert warm.params_[key] == pytest.approx(value, rel=0.05, abs=5e-3)
    ignored = Garch("garch").fit(r, warm_start={"mu": 0.0})
    assert ignored.params["warm_start"] is False and "warm start ignored" in ignored.notes


def test_exact_constraint_jacobians_leave_the_arch_fit_unchanged() -> None:
    """The speed-up only replaces finite differences of linear constraints by their exact
    Jacobian: same optimum and likelihood evaluations as plain ``arch``, which is restored after."""
    import arch.univariate.base as arch_base
    from arch import arch_model

    original = arch_base.constraint
    r = 100 * _simulate(1250, 0.02, 0.06, 0.90, 6.0, gamma=0.04, seed=7)
    for variant, spec in VARIANTS.items():
        plain = arch_model(r, mean="Constant", dist="t", rescale=False, **spec).fit(disp="off")
        with exact_linear_constraints():
            assert arch_base.constraint is not original
            fast = arch_model(r, mean="Constant", dist="t", rescale=False, **spec).fit(disp="off")
        assert arch_base.constraint is original, variant
        assert fast.loglikelihood == pytest.approx(plain.loglikelihood, abs=1e-5), variant
        np.testing.assert_allclose(fast.params.values, plain.params.values, rtol=1e-3, atol=1e-3)
        assert fast.optimization_result.nfev == pytest.approx(plain.optimization_result.nfev, rel=0.2)


def test_bad_input_raises_fit_failed() -> None:
    r = _simulate(400, 0.02, 0.08, 0.90, 6.0).copy()
    r[10] = np.inf
    with pytest.raises(FitFailed, match="NaN or infinite"):
        Garch("gjr").fit(r)
    with pytest.raises(FitFailed, match="at least 250"):
        Garch().fit(np.full(100, 0.001))
    with pytest.raises(FitFailed, match="before a successful fit"):
        Garch().forecast()
    with pytest.raises(ValueError, match="variant"):
        Garch("figarch")


def test_no_warning_escapes_and_library_default_counts_them() -> None:
    r = _simulate(1000, 0.02, 0.08, 0.90, 6.0, seed=5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for variant in ("garch", "gjr", "egarch"):
            model = Garch(variant, simulations=200)
            assert model.fit(r).warnings == 0
            model.forecast()
        default = library_default_garch(r)
    assert default.warnings >= 1 and "DataScaleWarning" in default.warning_messages[0]
    assert set(default.vol_by_horizon) == {1, 5, 21, 63}


@pytest.mark.shared_data
def test_real_series_aapl(shared_parquet) -> None:
    returns = shared_log_returns(shared_parquet, "AAPL", through_year=2018)
    for variant in ("garch", "gjr", "egarch"):
        model = Garch(variant, simulations=300)
        model.fit(returns)
        for f in model.forecast():
            values = [f.yhat, f.lower_80, f.upper_80, f.lower_95, f.upper_95, f.vol_forecast]
            assert all(math.isfinite(v) for v in values)
            assert f.upper_95 - f.lower_95 > f.upper_80 - f.lower_80 > 0
            assert 0.002 < f.vol_forecast / math.sqrt(f.horizon) < 0.05  # daily-equivalent vol


@pytest.mark.shared_data
def test_egarch_fits_never_end_below_the_model_they_nest(shared_parquet) -> None:
    """Tickers where arch's EGARCH stops at its iteration limit or "converges" below the
    constant-variance normal likelihood (one BLAS thread, as in production): ours either fails
    with the reason or returns a fit at least as likely as the constant-variance model it nests."""
    from arch import arch_model

    from model_code.forecasting.garch import NESTING_TOLERANCE, constant_variance_loglik

    troubled = 0
    assert constant_variance_loglik(np.array([1.0, -1.0])) == pytest.approx(-(math.log(2 * math.pi) + 1))
    for ticker in ("JWN", "KSS", "LB", "M", "TPR"):
        r = shared_log_returns(shared_parquet, ticker)[-1250:]
        spec = arch_model(100 * r, dist="t", vol="EGARCH", o=1, rescale=False)
        plain = spec.fit(disp="off", show_warning=False)
        floor = constant_variance_loglik(100 * r)
        troubled += plain.convergence_flag != 0 or plain.loglikelihood < floor
        model = Garch("egarch")
        try:
            model.fit(r)
        except FitFailed as exc:
            assert any(why in str(exc) for why in ("iteration limit", "constant-variance", "flag")), exc
            continue
        assert model.result_.loglikelihood >= floor - NESTING_TOLERANCE, ticker
        assert model.result_.loglikelihood >= plain.loglikelihood - 1e-3 or plain.convergence_flag != 0
    assert troubled >= 3  # the guards were exercised, not bypassed
