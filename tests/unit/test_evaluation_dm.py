"""Diebold–Mariano test with the HLN correction: hand examples, a reference, size and power."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from model_code.evaluation.diebold_mariano import dm_test, long_run_variance


def _p(stat: float, n: int) -> float:
    return 2 * stats.t.sf(abs(stat), n - 1)


def test_hand_computed_h1_and_h3() -> None:
    # d = [1, 2, 3, 4, 5]: mean 3, centred [-2, -1, 0, 1, 2];
    # gamma0 = 10/5 = 2, gamma1 = (2 + 0 + 0 + 2)/5 = 0.8, gamma2 = (0 - 1 + 0)/5 = -0.2.
    loss_b = np.array([1.0, 1.0, 1.0, 1.0, 1.0])
    loss_a = loss_b + np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    # h=1: DM = 3 / sqrt(2/5); HLN factor sqrt((5 + 1 - 2) / 5) = sqrt(0.8)  ->  3 * sqrt(2).
    r1 = dm_test(loss_a, loss_b, 1)
    assert r1.stat == pytest.approx(3 * math.sqrt(2))
    assert r1.p_value == pytest.approx(_p(3 * math.sqrt(2), 5))
    assert (r1.n, r1.mean_diff) == (5, 3.0)
    # h=3: lrv = 2 + 2 (0.8 - 0.2) = 3.2; DM = 3 / sqrt(3.2/5) = 3.75;
    # HLN factor sqrt((5 + 1 - 6 + 3*2/5) / 5) = sqrt(0.24).
    r3 = dm_test(loss_a, loss_b, 3)
    assert r3.stat == pytest.approx(3.75 * math.sqrt(0.24))
    assert r3.p_value == pytest.approx(_p(3.75 * math.sqrt(0.24), 5))
    # Swapping the models flips the sign only; negative means model a has the lower loss.
    assert dm_test(loss_b, loss_a, 3).stat == pytest.approx(-r3.stat)


@pytest.mark.parametrize("h", [1, 2, 4])
def test_matches_statsmodels_hac_uniform_kernel(h: int) -> None:
    sm = pytest.importorskip("statsmodels.api")
    rng = np.random.default_rng(h)
    a, b = rng.chisquare(1, 80), rng.chisquare(1, 80) * 1.2
    d = a - b
    assert long_run_variance(d, h - 1) > 0  # the rectangular estimate is used as is
    fit = sm.OLS(d, np.ones_like(d)).fit(
        cov_type="HAC", cov_kwds={"maxlags": h - 1, "kernel": "uniform", "use_correction": False}
    )
    n = d.size
    hln = math.sqrt((n + 1 - 2 * h + h * (h - 1) / n) / n)
    assert dm_test(a, b, h).stat == pytest.approx(float(fit.tvalues[0]) * hln, rel=1e-9)


def test_bartlett_weights_and_negative_rectangular_fallback() -> None:
    d = np.array([1.0, -1.0, 1.0, -1.0, 1.0, -1.0, 1.2, -0.8])  # strongly negative autocorrelation
    assert long_run_variance(d, 1) < 0
    assert long_run_variance(d, 1, "bartlett") > 0
    res = dm_test(d, np.zeros_like(d), 2)
    n, dbar = d.size, d.mean()
    expected = dbar / math.sqrt(long_run_variance(d, 1, "bartlett") / n) * math.sqrt((n + 1 - 4 + 2 / n) / n)
    assert res.stat == pytest.approx(expected)


def test_degenerate_cases() -> None:
    same = np.array([0.1, 0.2, 0.3, 0.4])
    assert math.isnan(dm_test(same, same).stat) and dm_test(same, same).p_value == 1.0
    const = dm_test(same + 0.5, same, 1)  # constant differential: zero variance
    assert math.isnan(const.stat) and const.p_value == 1.0 and const.mean_diff == pytest.approx(0.5)
    assert dm_test([1.0, 2.0], [0.0, 0.0]).p_value == 1.0  # too few pairs
    assert math.isnan(dm_test(np.arange(4.0), np.zeros(4), 4).stat)  # HLN factor <= 0
    nan = dm_test([1.0, np.nan, 3.0, 2.0, 5.0], [0.0, 1.0, 0.5, 0.1, 0.2])
    assert nan.n == 4
    with pytest.raises(ValueError):
        dm_test([1.0, 2.0], [1.0], 1)
    with pytest.raises(ValueError):
        dm_test([1.0, 2.0], [1.0, 2.0], 0)


@pytest.mark.parametrize("h", [1, 3])
def test_size_under_the_null(h: int) -> None:
    """Equal expected loss (h-1 overlapping errors for h=3): about 5 % rejections at 5 %."""
    rng = np.random.default_rng(123 + h)
    n, reps, rejected = 60, 2000, 0
    kernel = np.ones(h)
    for _ in range(reps):
        e = rng.standard_normal((2, n + h - 1))
        errors = np.array([np.convolve(x, kernel, mode="valid") for x in e])  # MA(h-1) errors
        rejected += dm_test(errors[0] ** 2, errors[1] ** 2, h).p_value < 0.05
    assert 0.02 <= rejected / reps <= 0.09


def test_power_against_a_clearly_worse_model() -> None:
    rng = np.random.default_rng(7)
    good, bad = rng.standard_normal(200), 1.6 * rng.standard_normal(200)
    res = dm_test(good**2, bad**2, 1)
    assert res.p_value < 0.01 and res.stat < 0 and res.mean_diff < 0
