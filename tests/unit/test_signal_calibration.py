"""Calibrated confidence: learned only from calls realized by as_of, and it means what it says."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from model_code.costs import TradingCosts
from model_code.signals.calibration import MIN_HISTORY, fit_calibration, forecast_calls

AS_OF = dt.date(2019, 6, 3)


def _calls(
    n: int, a: float, b: float, seed: int = 0, *, origin=dt.date(2019, 1, 2), target=dt.date(2019, 5, 1)
):
    rng = np.random.default_rng(seed)
    score = rng.uniform(0, 2, n)
    p = 1 / (1 + np.exp(-(a + b * score)))
    direction = rng.choice([-1, 1], n)
    hit = rng.uniform(size=n) < p
    actual = np.where(hit, direction, -direction) * rng.uniform(0.001, 0.02, n)
    return pl.DataFrame(
        {
            "origin": [origin] * n,
            "target_date": [target] * n,
            "direction": direction.astype(np.int8),
            "score": score,
            "actual": actual,
        }
    )


def test_recovers_a_known_logistic_relation_and_its_probabilities_match_hit_rates():
    calls = _calls(20_000, a=-0.1, b=0.4)
    cal = fit_calibration(calls, AS_OF)
    assert cal is not None and cal.n == 20_000
    assert cal.a == pytest.approx(-0.1, abs=0.06) and cal.b == pytest.approx(0.4, abs=0.06)
    # in bins of predicted confidence, the realized hit rate matches the prediction
    held_out = _calls(20_000, a=-0.1, b=0.4, seed=1)
    p = cal.confidence(held_out["score"].to_numpy())
    hit = held_out["direction"].to_numpy() == np.sign(held_out["actual"].to_numpy())
    for lo, hi in [(0.45, 0.52), (0.52, 0.58), (0.58, 0.7)]:
        inside = (p >= lo) & (p < hi)
        assert inside.sum() > 1000
        assert hit[inside].mean() == pytest.approx(p[inside].mean(), abs=0.02)


def test_uses_only_calls_realized_by_as_of():
    old = _calls(400, a=0.0, b=1.0)
    late = _calls(5000, a=3.0, b=0.0, seed=2, target=dt.date(2019, 6, 4))  # closes the day after
    future = _calls(5000, a=3.0, b=0.0, seed=3, origin=AS_OF, target=dt.date(2019, 6, 3))
    base = fit_calibration(old, AS_OF)
    assert base == fit_calibration(pl.concat([old, late, future]), AS_OF)


def test_too_little_history_gives_no_calibration_and_a_negative_slope_is_floored():
    assert fit_calibration(_calls(MIN_HISTORY - 1, 0.0, 1.0), AS_OF) is None
    inverted = fit_calibration(_calls(5000, a=0.2, b=-0.5, seed=4), AS_OF)
    assert inverted is not None and inverted.b == 0.0
    assert inverted.confidence(np.array([0.0, 5.0])) == pytest.approx([inverted.hit_rate] * 2)


def test_forecast_calls_score_is_size_over_predicted_sd():
    rows = pl.DataFrame(
        {"yhat": [0.01, -0.02, 0.0], "lower_80": [-0.01, -0.04, -0.01], "upper_80": [0.03, 0.0, 0.01]}
    )
    calls = forecast_calls(rows)
    sd = 0.04 / (2 * 1.2815515655446004)
    assert calls["direction"].to_list() == [1, -1, 0]
    assert calls["score"].to_list() == pytest.approx([0.01 / sd, 0.02 / sd, 0.0])


def test_costs_are_one_definition_with_checked_inputs():
    costs = TradingCosts()
    assert costs.round_trip_bps == 20.0 and costs.round_trip_log == pytest.approx(-np.log(1 - 0.002))
    with pytest.raises(ValueError, match="slippage_bps"):
        TradingCosts(slippage_bps=-1)
