"""CUSUM change points and the Samossa forecaster (SSA signal + AR residual)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import polars as pl
import pytest

from model_code.forecasting.base import HORIZONS, FitFailed, Forecaster
from model_code.forecasting.changepoints import changepoint_dates, cusum_changepoints
from model_code.forecasting.samossa import Samossa, ar_cumulative_forecast
from tests.conftest import shared_log_returns


def level_shift(n: int = 400, at: int = 250, shift: float = 1.5, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=n)
    x[at:] += shift
    return x


@pytest.mark.parametrize("seed", range(5))
def test_cusum_finds_a_level_shift_as_plain_ints(seed):
    cps = cusum_changepoints(level_shift(seed=seed), min_segment=20)
    assert isinstance(cps, list) and all(type(p) is int for p in cps)
    assert len(cps) == 1 and abs(cps[0] - 250) <= 5, cps


def test_cusum_false_positive_rate_on_stationary_noise():
    hits = [bool(cusum_changepoints(np.random.default_rng(1000 + s).normal(size=500))) for s in range(200)]
    assert np.mean(hits) <= 0.04  # threshold 1.63 ≈ 1 % nominal


def test_cusum_parameters_and_two_shifts():
    x = level_shift(600, 200, 2.0, seed=7)
    x[450:] -= 2.0
    cps = cusum_changepoints(x, min_segment=20)
    assert len(cps) == 2 and abs(cps[0] - 200) <= 5 and abs(cps[1] - 450) <= 5
    assert cusum_changepoints(x, threshold=1e6) == []
    assert cusum_changepoints(x[:30], min_segment=20) == []  # too short for two segments
    with pytest.raises(ValueError, match="NaN"):
        cusum_changepoints(np.array([1.0, np.nan, 2.0]))


def test_changepoint_dates_from_any_date_array():
    x = level_shift()
    cps = cusum_changepoints(x)
    days = pd.bdate_range("2018-01-01", periods=x.size)
    for dates in (days, days.to_numpy(), pl.Series(days.to_pydatetime()), list(days.date)):
        got = changepoint_dates(cps, dates)
        assert isinstance(got, list) and len(got) == len(cps)
        assert pd.Timestamp(got[0]) == days[cps[0]]
    assert isinstance(changepoint_dates(cps, list(days.date))[0], dt.date)
    with pytest.raises(IndexError):
        changepoint_dates([x.size], days)


def test_ar_cumulative_forecast_matches_closed_form_ar1():
    phi, sigma2, last, hs = 0.4, 2.0, 1.5, [1, 2, 5, 21]
    mean, std = ar_cumulative_forecast(np.array([[phi]]), np.array([sigma2]), np.array([[last]]), hs)
    for j, h in enumerate(hs):
        want_mean = last * phi * (1 - phi**h) / (1 - phi)
        big_psi = [(1 - phi ** (n + 1)) / (1 - phi) for n in range(h)]
        assert mean[0, j] == pytest.approx(want_mean, rel=1e-12)
        assert std[0, j] == pytest.approx(np.sqrt(sigma2 * np.sum(np.square(big_psi))), rel=1e-12)
    white_mean, white_std = ar_cumulative_forecast(np.zeros((1, 0)), np.array([1.0]), np.zeros((1, 0)), hs)
    np.testing.assert_allclose(white_mean, 0.0)
    np.testing.assert_allclose(white_std[0], np.sqrt(hs))


def assert_sane(forecasts, horizons=HORIZONS):
    assert [f.horizon for f in forecasts] == list(horizons)
    for f in forecasts:
        vals = [f.lower_95, f.lower_80, f.yhat, f.upper_80, f.upper_95, f.vol_forecast]
        assert np.isfinite(vals).all()
        assert f.lower_95 < f.lower_80 < f.yhat < f.upper_80 < f.upper_95


def test_samossa_is_a_forecaster_and_reports_the_change_point():
    rng = np.random.default_rng(11)
    returns = rng.normal(0.0, 0.01, 900)
    returns[750:] += 0.012  # the drift changes 150 sessions before the end
    model = Samossa()
    assert isinstance(model, Forecaster)
    diag = model.fit(returns)
    assert diag.params["n_changepoints"] >= 1
    assert abs(int(diag.params["last_changepoint"]) - 750) <= 10
    assert diag.params["refit_start"] == diag.params["last_changepoint"]  # recent and long enough
    assert "CUSUM change points" in (diag.notes or "")
    fc = model.forecast()
    assert_sane(fc)
    assert fc[-1].yhat > 0  # the post-change drift is positive


def test_samossa_without_change_point_uses_all_data_and_validates_input():
    returns = np.random.default_rng(2).normal(0.0, 0.01, 500)
    model = Samossa(window=60)
    with pytest.raises(RuntimeError, match="before a successful fit"):
        model.forecast()
    diag = model.fit(returns)
    assert diag.params["refit_start"] == 0 and diag.params["last_changepoint"] == -1
    assert diag.params["window"] == 60 and 0.9 <= float(diag.params["energy_captured"]) <= 1.0
    assert diag.fit_seconds > 0 and diag.warnings == 0
    assert_sane(model.forecast((1, 3, 10)), (1, 3, 10))
    with pytest.raises(FitFailed, match="NaN"):
        Samossa().fit(np.r_[returns[:100], np.nan])
    with pytest.raises(FitFailed, match="at least"):
        Samossa().fit(returns[:10])


def test_samossa_80pct_interval_coverage_on_white_noise():
    covered: dict[int, list[bool]] = {1: [], 5: []}
    for seed in range(150):
        r = np.random.default_rng(seed).normal(0.0, 0.01, 505)
        model = Samossa()
        model.fit(r[:500])
        for f in model.forecast((1, 5)):
            y = r[500 : 500 + f.horizon].sum()
            covered[f.horizon].append(f.lower_80 <= y <= f.upper_80)
    for h, hits in covered.items():
        assert abs(np.mean(hits) - 0.80) <= 0.08, (h, np.mean(hits))


@pytest.mark.shared_data
def test_samossa_on_real_aapl_returns(shared_parquet):
    returns = shared_log_returns(shared_parquet, "AAPL", through_year=2018)
    assert returns.size > 900
    model = Samossa()
    diag = model.fit(returns)
    assert diag.n_obs == returns.size
    assert_sane(model.forecast())
