"""Regime labels are point in time; the regime table tells a regime-bound edge from a steady one."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from model_code.backtest.regimes import regime_table, trend_regimes, volatility_regimes

RNG = np.random.default_rng(11)
CALM, WILD = RNG.normal(0, 0.005, 300), RNG.normal(0, 0.03, 300)
MARKET = np.concatenate([CALM, WILD, CALM, WILD])


@settings(max_examples=20, deadline=None)
@given(t=st.integers(min_value=100, max_value=MARKET.size - 2), scale=st.floats(min_value=0.1, max_value=10))
def test_volatility_labels_ignore_every_later_return(t, scale):
    changed = MARKET.copy()
    changed[t + 1 :] *= scale
    assert list(volatility_regimes(MARKET)[: t + 1]) == list(volatility_regimes(changed)[: t + 1])


def test_volatility_and_trend_labels_follow_the_market():
    labels = volatility_regimes(MARKET)
    assert labels[0] is None and labels[500] == "high" and labels[850] in {"low", "mid"}
    prices = np.concatenate([np.linspace(100, 200, 300), np.linspace(200, 100, 300)])
    trend = trend_regimes(prices)
    assert trend[199] is None and trend[250] == "up" and trend[590] == "down"


def test_an_edge_earned_only_in_one_regime_is_flagged_and_a_steady_one_is_not():
    labels = {"volatility": volatility_regimes(MARKET)}
    bound = np.where(labels["volatility"] == "high", 0.004, -0.001) + RNG.normal(0, 0.01, MARKET.size)
    table, summary = regime_table(bound, labels)
    row = summary.row(0, named=True)
    assert row["worst_regime"] in {"low", "mid"} and row["heterogeneity_p"] < 0.01
    assert set(table["regime"]) == {"low", "mid", "high"}
    high = table.filter(table["regime"] == "high").row(0, named=True)
    assert high["sharpe"] > 0 and high["sharpe_se"] == pytest.approx(
        np.sqrt((1 + high["sharpe"] ** 2 / 2) / high["days"])
    )
    steady = 0.001 + RNG.normal(0, 0.01, MARKET.size)
    _, calm = regime_table(steady, labels)
    assert calm.row(0, named=True)["heterogeneity_p"] > 0.05


def test_labels_of_another_length_are_refused():
    with pytest.raises(ValueError, match="volatility: 3 labels for 1200 returns"):
        regime_table(MARKET, {"volatility": ["low", "mid", "high"]})
