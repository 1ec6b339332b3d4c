"""SSA: reconstruction, recurrent/vector forecasts, rank selection, eigh path vs full-SVD reference."""

from __future__ import annotations

import numpy as np
import pytest

from model_code.forecasting.array_backend import get_backend, single_thread_blas
from model_code.forecasting.ssa import (
    decompose,
    full_svd_ssa_reference,
    hankel,
    lag_covariance,
    reconstruct,
    ssa,
    ssa_return_forecast,
)

NP = get_backend("numpy")


def sine_trend_noise(n: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    t = np.arange(n)
    clean = np.sin(2 * np.pi * t / 20) + 0.01 * t
    return clean + 0.1 * np.random.default_rng(seed).normal(size=n), clean


def test_reconstructs_sine_plus_trend_from_noise():
    x, clean = sine_trend_noise()
    res = ssa(x, 80, energy=0.998)
    assert res.rank == 4  # linear trend (rank 2) + sine pair (2)
    rmse = np.sqrt(np.mean((res.reconstruction - clean) ** 2))
    assert rmse < 0.03, rmse  # noise sd is 0.1
    assert res.energy_captured >= 0.998


@pytest.mark.parametrize("method", ["recurrent", "vector"])
def test_forecast_of_a_pure_sine_matches_its_continuation(method):
    y = np.sin(2 * np.pi * np.arange(300) / 20 + 0.3)
    res = ssa(y[:240], 40)
    assert res.rank == 2
    np.testing.assert_allclose(res.forecast(60, method), y[240:], atol=1e-8)


@pytest.mark.parametrize("window", [40, 120, 200])
def test_eigh_path_equals_full_svd_reference(window):
    x, _ = sine_trend_noise(seed=window)
    with single_thread_blas():  # threaded BLAS on small matrices is slow on a busy 2-core box
        fast, ref = ssa(x, window, 0.99), full_svd_ssa_reference(x, window, 0.99)
    assert fast.rank == ref.rank
    s_ref = ref.singular_values
    np.testing.assert_allclose(fast.singular_values[: fast.rank], s_ref[: fast.rank], rtol=1e-8)
    np.testing.assert_allclose(fast.singular_values, s_ref, rtol=1e-8, atol=1e-8 * s_ref[0])
    scale = np.abs(ref.reconstruction).max()
    np.testing.assert_allclose(fast.reconstruction, ref.reconstruction, rtol=0, atol=1e-8 * scale)
    np.testing.assert_allclose(fast.forecast(30), ref.forecast(30), rtol=0, atol=1e-8 * scale)


def test_truncated_svds_path_equals_reference():
    x, _ = sine_trend_noise(seed=5)
    fast, ref = ssa(x, 80, 0.99, method="svds"), full_svd_ssa_reference(x, 80, 0.99)
    assert fast.rank == ref.rank
    np.testing.assert_allclose(fast.reconstruction, ref.reconstruction, atol=1e-8 * np.abs(x).max())


def test_rank_selection_for_two_sines():
    t = np.arange(300)
    x = (
        np.sin(2 * np.pi * t / 12)
        + np.sin(2 * np.pi * t / 31)
        + 0.02 * np.random.default_rng(1).normal(size=t.size)
    )
    assert ssa(x, 60, energy=0.9).rank == 4  # two pairs of equal energy: 25 % each
    assert ssa(x, 60, energy=0.45).rank == 2
    assert full_svd_ssa_reference(x, 60, energy=0.9).rank == 4


def test_lag_covariance_without_trajectory_matrix_matches_explicit_products():
    rng = np.random.default_rng(2)
    z, window = rng.normal(size=(4, 300)).cumsum(1), 40
    k = z.shape[1] - window + 1
    post_start = np.array([0, 100, k, 10_000])
    traj = hankel(z, window)
    weights = np.where(np.arange(k)[None, :] >= np.clip(post_start, 0, k)[:, None], 3.0, 1.0)
    want = np.einsum("nlk,nmk->nlm", traj * weights[:, None, :], traj)
    got = lag_covariance(z, window, NP, post_start=post_start, post_weight=3.0)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12 * np.abs(want).max())
    stacked = lag_covariance(z, window, NP, stacked=True)
    np.testing.assert_allclose(stacked, np.einsum("nlk,nmk->lm", traj, traj), rtol=1e-12)


def test_batched_decomposition_equals_per_series_ssa():
    rng = np.random.default_rng(4)
    t = np.arange(300)
    z = np.stack([np.sin(2 * np.pi * t / p) + 0.05 * rng.normal(size=t.size) for p in (15, 25, 40)])
    dec = decompose(z, 60, 0.9, NP)
    recon = reconstruct(z, dec.basis(np), np)
    for i in range(3):
        one = ssa(z[i], 60, 0.9)
        assert dec.rank[i] == one.rank
        np.testing.assert_allclose(recon[i], one.reconstruction, atol=1e-10)


def test_return_forecast_is_cumulative_over_the_horizon():
    drift = 0.001
    returns = np.full(300, drift) + 1e-6 * np.sin(np.arange(300))
    cum, increments, res = ssa_return_forecast(returns, [1, 5, 21, 63], 60, energy=0.999999)
    np.testing.assert_allclose(cum, drift * np.array([1, 5, 21, 63]), rtol=1e-3)
    assert increments.shape == (299,)
    np.testing.assert_allclose(increments, drift, rtol=1e-2)
    assert res.window == 60


def test_bad_window_is_rejected():
    with pytest.raises(ValueError, match="window"):
        ssa(np.arange(50.0), 40)
