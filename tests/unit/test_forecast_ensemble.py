"""Ensemble weights (bounded inverse-MSE), the moment-matched combination and confidence."""

from __future__ import annotations

import math

import pytest

from model_code.forecasting.base import Z80, Z95, gaussian_forecast
from model_code.forecasting.ensemble import combine, confidence, ensemble_weights


def test_weights_sum_to_one_bounded_and_best_model_weighted_most() -> None:
    losses = {"arima": 2.0e-4, "garch": 1.0e-4, "drift": 4.0e-4, "random_walk": 3.0e-4}
    w = ensemble_weights(losses)
    assert sum(w.values()) == pytest.approx(1.0)
    assert max(w, key=w.get) == "garch"
    assert all(0.02 - 1e-12 <= v <= 0.6 + 1e-12 for v in w.values())
    # unbounded here, so exactly inverse-MSE
    inv = {k: 1 / v for k, v in losses.items()}
    assert w["arima"] == pytest.approx(inv["arima"] / sum(inv.values()))


def test_floor_and_cap_bind_then_renormalize() -> None:
    w = ensemble_weights({"a": 1e-8, "b": 1.0, "c": 1.0, "d": 1e6}, floor=0.05, cap=0.6)
    assert w["a"] == pytest.approx(0.6)
    assert w["d"] == pytest.approx(0.05)
    assert w["b"] == pytest.approx(w["c"]) == pytest.approx(0.175)
    assert sum(w.values()) == pytest.approx(1.0)


def test_infeasible_cap_is_relaxed_and_bad_losses_get_zero() -> None:
    assert ensemble_weights({"a": 1.0, "b": 100.0}, cap=0.4) == pytest.approx({"a": 0.5, "b": 0.5})
    w = ensemble_weights({"a": 1.0, "b": math.nan, "c": math.inf, "d": 2.0})
    assert w["b"] == 0.0 and w["c"] == 0.0
    assert w["a"] == pytest.approx(0.6) and w["d"] == pytest.approx(0.4)
    assert ensemble_weights({"solo": 3.0}) == {"solo": 1.0}
    assert ensemble_weights({"perfect": 0.0, "b": 1.0})["perfect"] == pytest.approx(0.6)
    with pytest.raises(ValueError):
        ensemble_weights({"a": math.nan})


def test_combine_two_gaussians_moment_match() -> None:
    a = gaussian_forecast("a", 5, 0.0, 1.0, vol=1.0)
    b = gaussian_forecast("b", 5, 2.0, 1.0, vol=1.0)
    f = combine([a, b], {"a": 0.5, "b": 0.5})
    std = math.sqrt(2.0)  # 0.5*(1+1) + 0.5*(1+1) - 1**2
    assert f.model == "ensemble" and f.horizon == 5
    assert f.yhat == pytest.approx(1.0)
    assert (f.lower_80, f.upper_80) == pytest.approx((1 - Z80 * std, 1 + Z80 * std))
    assert (f.lower_95, f.upper_95) == pytest.approx((1 - Z95 * std, 1 + Z95 * std))
    assert f.vol_forecast == pytest.approx(std)
    g = combine([a, b], {"a": 0.75, "b": 0.25})
    assert g.yhat == pytest.approx(0.5)
    assert g.vol_forecast == pytest.approx(math.sqrt(1 + 0.75 * 0.25 + 0.25 * 2.25))


def test_combine_rejects_mixed_horizons_and_zero_weights() -> None:
    a = gaussian_forecast("a", 1, 0.0, 1.0)
    b = gaussian_forecast("b", 5, 0.0, 1.0)
    with pytest.raises(ValueError, match="horizon"):
        combine([a, b], {"a": 0.5, "b": 0.5})
    with pytest.raises(ValueError, match="weights"):
        combine([a], {"x": 1.0})
    assert combine([a, gaussian_forecast("c", 1, 0.0, 2.0)], {"a": 1.0}).vol_forecast is None


def test_confidence_is_one_for_equal_losses_and_drops_with_dispersion() -> None:
    equal = {"a": 1.0, "b": 1.0, "c": 1.0}
    assert confidence(ensemble_weights(equal), equal) == pytest.approx(1.0)
    mild = {"a": 1.0, "b": 1.2, "c": 1.4}
    wild = {"a": 1.0, "b": 5.0, "c": 25.0}
    c_mild = confidence(ensemble_weights(mild), mild)
    c_wild = confidence(ensemble_weights(wild), wild)
    assert 0.0 < c_wild < c_mild < 1.0
    assert confidence({"a": 0.0}, {"a": 1.0}) == 0.0
