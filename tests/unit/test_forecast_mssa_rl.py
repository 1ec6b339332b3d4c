"""MSSA-RL: one decomposition for the universe, forecasts for every ticker, Q-learning, no look-ahead."""

from __future__ import annotations

import numpy as np
import pytest

from model_code.forecasting import mssa_rl
from model_code.forecasting.base import HORIZONS, FitFailed
from model_code.forecasting.mssa_rl import ACTIONS, MssaRl, QPolicy


def panel(n_tickers: int, n_obs: int = 400, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """Daily log returns T×N: a shared slow cycle plus idiosyncratic noise; ticker 0 shifts drift."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_obs)
    common = 0.002 * np.sin(2 * np.pi * t / 90)
    r = common[:, None] + rng.normal(0.0, 0.01, (n_obs, n_tickers)) * rng.uniform(0.5, 2.0, n_tickers)
    r[n_obs - 120 :, 0] += 0.01
    return r, [f"T{i}" for i in range(n_tickers)]


@pytest.fixture
def count_decompositions(monkeypatch):
    calls: list[tuple[int, ...]] = []
    real = mssa_rl.mssa_decompose

    def counting(z, *args, **kwargs):
        calls.append(tuple(z.shape))
        return real(z, *args, **kwargs)

    monkeypatch.setattr(mssa_rl, "mssa_decompose", counting)
    return calls


def test_one_decomposition_for_all_tickers(count_decompositions):
    for n in (3, 7):
        count_decompositions.clear()
        MssaRl(n_episodes=0).fit(*panel(n))
        assert len(count_decompositions) == 1 and count_decompositions[0][0] == n  # N series, one eigh
    counts = []
    for n in (3, 7):
        count_decompositions.clear()
        model = MssaRl(n_episodes=4)
        model.fit(*panel(n))
        counts.append(len(count_decompositions))
        assert counts[-1] == len(model.episode_origins_) + 1  # one per walk-forward origin + the final one
    assert counts[0] == counts[1]  # independent of the number of tickers


def test_forecasts_for_every_ticker_with_nested_intervals():
    returns, tickers = panel(6)
    model = MssaRl(n_episodes=6)
    diag = model.fit(returns, tickers)
    assert diag.params["n_tickers"] == 6 and diag.n_obs == returns.shape[0]
    assert set(model.actions_) == set(tickers) and set(model.actions_.values()) <= set(ACTIONS)
    assert {k for k in diag.params if k.startswith("oos_mae_")} == {
        f"oos_mae_{a}" for a in (*ACTIONS, "policy")
    }
    forecasts = model.forecast()
    assert set(forecasts) == set(tickers)
    for fcs in forecasts.values():
        assert [f.horizon for f in fcs] == list(HORIZONS)
        for f in fcs:
            assert np.isfinite([f.yhat, f.lower_95, f.upper_95, f.vol_forecast]).all()
            assert f.lower_95 < f.lower_80 < f.yhat < f.upper_80 < f.upper_95
            assert f.model == "mssa_rl"
    assert forecasts["T0"][-1].yhat > 0  # the recent positive drift of ticker 0 is picked up


def test_change_point_weighting_marks_the_shifted_ticker():
    returns, tickers = panel(4)
    model = MssaRl(n_episodes=0)
    model.fit(returns, tickers)
    assert model.changepoints_["T0"] and abs(model.changepoints_["T0"][-1] - 280) <= 15
    assert all(type(p) is int for cps in model.changepoints_.values() for p in cps)
    _, post_start, recent = model._changepoints(returns)
    k = returns.shape[0] - model.window + 1
    assert post_start[0] < k and recent.dtype == bool
    weighted = mssa_rl.mssa_decompose(returns.T.cumsum(1), 60, 0.9, mssa_rl.resolve("numpy"), post_start, 5.0)
    plain = mssa_rl.mssa_decompose(returns.T.cumsum(1), 60, 0.9, mssa_rl.resolve("numpy"))
    assert not np.allclose(weighted.eigvals, plain.eigvals)


def test_q_policy_learns_the_always_best_action():
    rng = np.random.default_rng(0)
    policy = QPolicy(n_states=4, n_actions=3, alpha=0.2, gamma=0.3, epsilon=0.2, seed=1)
    state = 0
    for _ in range(3000):
        action = policy.act(state, explore=True)
        reward = 1.0 if action == 2 else -rng.uniform(0.0, 1.0)
        nxt = int(rng.integers(4))
        policy.update(state, action, reward, nxt)
        state = nxt
    assert [policy.act(s) for s in range(4)] == [2, 2, 2, 2]
    assert (policy.visits > 0).all()


def test_untried_actions_never_win_and_seeds_reproduce():
    policy = QPolicy(n_states=2, n_actions=3)
    assert policy.act(0) == 0  # nothing tried: keep
    policy.update(0, 1, -0.5, 1)
    assert policy.act(0) == 1  # the only tried action, despite a negative value
    a = [QPolicy(1, 3, epsilon=0.5, seed=7).act(0, explore=True) for _ in range(5)]
    b = [QPolicy(1, 3, epsilon=0.5, seed=7).act(0, explore=True) for _ in range(5)]
    assert a == b


def test_no_look_ahead_and_reproducible():
    returns, tickers = panel(5, n_obs=460, seed=3)
    as_of = 400
    tampered = returns.copy()
    tampered[as_of:] = 0.5  # absurd future data must not matter
    fits = []
    for data, cut in ((returns, as_of), (returns[:as_of], None), (tampered, as_of)):
        model = MssaRl(n_episodes=5, seed=4)
        diag = model.fit(data, tickers, as_of=cut)
        fits.append((model.forecast(), model.actions_, diag.params, model.policy_.q.copy()))
        assert max(model.episode_origins_) + model.episode_horizon <= as_of  # outcomes realized by as_of
    for other in fits[1:]:
        assert other[0] == fits[0][0] and other[1] == fits[0][1] and other[2] == fits[0][2]
        np.testing.assert_array_equal(other[3], fits[0][3])


def test_bad_input_is_rejected():
    returns, tickers = panel(3)
    with pytest.raises(ValueError, match="T×N"):
        MssaRl().fit(returns, tickers[:2])
    bad = returns.copy()
    bad[5, 1] = np.nan
    with pytest.raises(FitFailed, match="NaN"):
        MssaRl().fit(bad, tickers)
    with pytest.raises(FitFailed, match="at least"):
        MssaRl().fit(returns[:50], tickers)
    with pytest.raises(RuntimeError, match="before a successful fit"):
        MssaRl().forecast()
