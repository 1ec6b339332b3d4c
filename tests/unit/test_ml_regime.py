"""Market regime model: recovery of known regimes, stable state order, no look-ahead."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from model_code.features.synthetic import synthetic_bars
from model_code.ml.loading import load_model
from model_code.ml.regime import RegimeModel, market_regime_inputs

BLOCKS = ((0.004, 200), (0.02, 200), (0.004, 200), (0.02, 200))  # (daily vol, dates): calm, stormy, ...


def _two_regime_panel(seed: int = 1, n_tickers: int = 8) -> tuple[pl.DataFrame, np.ndarray]:
    """Daily log returns (ticker, date, ret) with a common factor whose vol switches by block."""
    rng = np.random.default_rng(seed)
    sig = np.concatenate([np.full(n, s) for s, n in BLOCKS])
    n = sig.size
    rets = rng.normal(size=n) * sig + rng.normal(0, 0.01, (n_tickers, n))
    dates = [dt.date(2010, 1, 4) + dt.timedelta(days=i) for i in range(n)]
    panel = pl.DataFrame(
        {
            "ticker": np.repeat([f"T{i}" for i in range(n_tickers)], n),
            "date": dates * n_tickers,
            "ret": rets.ravel(),
        }
    )
    return panel, (sig > 0.01).astype(int)


@pytest.fixture(scope="module")
def market() -> tuple[pl.DataFrame, np.ndarray]:
    panel, truth = _two_regime_panel()
    inputs = market_regime_inputs(panel)
    return inputs, truth[-inputs.height :]


@pytest.mark.parametrize("method", ["hmm", "gmm"])
def test_recovers_two_regimes_with_calm_state_first(market, method):
    inputs, truth = market
    model = RegimeModel(2, method, seed=0, n_init=2).fit(inputs)
    states = model.predict_states(inputs)["state"].to_numpy()
    assert (states == truth).mean() > 0.8  # no relabeling: state 0 is the calm regime
    summary = model.state_summary()
    assert summary["mean_vol"][0] < summary["mean_vol"][1]


def test_state_order_is_stable_across_seeds(market):
    inputs, _ = market
    a = RegimeModel(2, "hmm", seed=0, n_init=1).fit(inputs).predict_states(inputs)
    b = RegimeModel(2, "hmm", seed=5, n_init=1).fit(inputs).predict_states(inputs)
    assert (a["state"] == b["state"]).mean() > 0.95


@pytest.mark.parametrize("method", ["hmm", "gmm"])
def test_filtered_probabilities_have_no_look_ahead_and_sum_to_one(market, method):
    inputs, _ = market
    model = RegimeModel(3, method, seed=0, n_init=1).fit(inputs)
    full = model.state_probabilities(inputs)
    assert full.columns == ["date", "p_state_0", "p_state_1", "p_state_2"]
    assert np.allclose(full.drop("date").to_numpy().sum(axis=1), 1.0)
    cut = full["date"][400]
    head = model.state_probabilities(inputs.filter(pl.col("date") <= cut))
    assert head.equals(full.filter(pl.col("date") <= cut))


def test_hmm_probabilities_are_filtered_not_smoothed(market):
    inputs, _ = market
    model = RegimeModel(2, "hmm", seed=0, n_init=1).fit(inputs)
    probs = model.state_probabilities(inputs).drop("date").to_numpy()
    # Appending later data must not change earlier rows, even a single extra day.
    shorter = model.state_probabilities(inputs.head(inputs.height - 1)).drop("date").to_numpy()
    assert np.array_equal(probs[:-1], shorter)


def test_market_inputs_are_point_in_time_from_bars():
    bars = synthetic_bars(n_tickers=4, n_bars=120, seed=3)
    full = market_regime_inputs(bars)
    cut = full["date"][50]
    part = market_regime_inputs(bars.filter(pl.col("date") <= cut))
    assert part.equals(full.filter(pl.col("date") <= cut))
    assert full.columns == ["date", "mkt_ret", "mkt_vol"] and full["mkt_vol"].min() > 0
    assert full.height == 120 - 21  # one return lost to differencing, 20 to the vol warm-up


def test_regime_model_round_trips_through_its_artifact(market, tmp_path):
    inputs, _ = market
    model = RegimeModel(2, "hmm", seed=0, n_init=1).fit(inputs)
    again = load_model(model.save(tmp_path / "regime"))
    assert isinstance(again, RegimeModel)
    assert again.state_probabilities(inputs).equals(model.state_probabilities(inputs))


def test_bad_arguments_refused():
    with pytest.raises(ValueError, match="2..4"):
        RegimeModel(5)
    with pytest.raises(ValueError, match="hmm"):
        RegimeModel(2, "kmeans")  # type: ignore[arg-type]
