"""Capacity: the closed form against a brute-force AUM sweep of the same trades."""

import math

import numpy as np
import pytest
from scipy.optimize import brentq

from model_code.backtest.capacity import capacity, daily_costs

RNG = np.random.default_rng(3)
DAYS, TICKERS = 250, 20
DW = RNG.uniform(0, 0.02, (DAYS, TICKERS)) * (RNG.uniform(size=(DAYS, TICKERS)) < 0.5)
ADV = RNG.uniform(5e6, 5e8, (DAYS, TICKERS))
SIGMA = RNG.uniform(0.01, 0.03, (DAYS, TICKERS))
NOISE = RNG.normal(0, 0.01, DAYS)
GROSS = 0.002 + NOISE - NOISE.mean()  # a mean gross edge of 20 bp a day


def _net_mean(aum: float, k: float = 1.0) -> float:
    return float((GROSS - daily_costs(aum, DW, ADV, SIGMA, half_spread=0.0005, k=k)).mean())


@pytest.mark.parametrize("k", [1.0, 0.5])
def test_the_closed_form_matches_a_brute_force_sweep(k):
    cap = capacity(GROSS, DW, ADV, SIGMA, half_spread=0.0005, k=k)
    # brute force: the AUM where the swept mean net return crosses zero
    sweep = np.logspace(3, 13, 400)
    nets = np.array([_net_mean(a, k) for a in sweep])
    crossing = np.nonzero(np.diff(np.sign(nets)))[0]
    assert crossing.size == 1
    lo, hi = sweep[crossing[0]], sweep[crossing[0] + 1]
    brute = brentq(lambda a: _net_mean(a, k), lo, hi, xtol=1.0, rtol=1e-12)
    assert cap.edge_vanishes == pytest.approx(brute, rel=1e-9)
    # the net Sharpe (mean drag over the gross vol) halves at a quarter of that AUM
    start = _net_mean(0.0, k)
    assert _net_mean(cap.sharpe_halves, k) == pytest.approx(start / 2, rel=1e-9)
    # the participation cap binds exactly where the largest trade reaches 10 % of its ADV
    ratio = cap.participation_binds * DW / ADV
    assert ratio.max() == pytest.approx(0.10) and cap.capacity == min(
        cap.sharpe_halves, cap.participation_binds
    )


def test_half_the_impact_coefficient_quadruples_the_edge_capacity():
    full = capacity(GROSS, DW, ADV, SIGMA, k=1.0)
    half = capacity(GROSS, DW, ADV, SIGMA, k=0.5)
    assert half.edge_vanishes == pytest.approx(4 * full.edge_vanishes)


def test_no_edge_after_spread_means_no_capacity_and_no_trades_means_unbounded():
    flat = capacity(np.full(DAYS, 0.00001), DW, ADV, SIGMA, half_spread=0.0005)
    assert flat.edge_vanishes == 0.0 and flat.capacity == 0.0
    idle = capacity(GROSS, np.zeros_like(DW), ADV, SIGMA)
    assert math.isinf(idle.edge_vanishes) and math.isinf(idle.participation_binds)


def test_a_trade_without_adv_is_refused_naming_where():
    adv = ADV.copy()
    t, i = np.argwhere(DW > 0)[0]
    adv[t, i] = 0.0
    with pytest.raises(ValueError, match=rf"\[{t}, {i}\] has no positive ADV"):
        capacity(GROSS, DW, adv, SIGMA)
