"""NumPy/CuPy array backend: NumPy by default, a clear error for CuPy without a GPU, GPU parity."""

from __future__ import annotations

import numpy as np
import pytest

from model_code.forecasting import array_backend as ab
from model_code.forecasting.ssa import decompose, reconstruct

HAS_CUPY, CUPY_REASON = ab.cupy_available()


def test_numpy_is_the_default(monkeypatch):
    monkeypatch.delenv(ab.ENV_VAR, raising=False)
    be = ab.get_backend()
    assert be.name == "numpy" and be.xp is np and not be.is_gpu
    monkeypatch.setenv(ab.ENV_VAR, "numpy")
    assert ab.get_backend().name == "numpy"


def test_auto_falls_back_to_numpy_without_a_gpu(monkeypatch):
    monkeypatch.setenv(ab.ENV_VAR, "auto")
    assert ab.get_backend().name == ("cupy" if HAS_CUPY else "numpy")


@pytest.mark.skipif(HAS_CUPY, reason="CuPy and a CUDA device are present here")
def test_explicit_cupy_without_gpu_raises_a_clear_error(monkeypatch):
    monkeypatch.setenv(ab.ENV_VAR, "cupy")
    with pytest.raises(ab.BackendUnavailable, match=r"'cupy' was requested.*PM_ARRAY_BACKEND=cupy"):
        ab.get_backend()


def test_unknown_backend_name_is_rejected():
    with pytest.raises(ValueError, match="PM_ARRAY_BACKEND must be one of"):
        ab.get_backend("tpu")


def test_linear_algebra_helpers_on_numpy():
    be = ab.get_backend("numpy")
    rng = np.random.default_rng(0)
    a = rng.normal(size=(30, 80))
    dev = be.to_device(a)
    assert isinstance(be.to_host(dev), np.ndarray) and dev.dtype == np.float64
    w, v = be.eigh(dev @ dev.T)
    assert np.all(np.diff(w) <= 0)  # descending
    np.testing.assert_allclose((dev @ dev.T) @ v[:, 0], w[0] * v[:, 0], rtol=1e-10)
    _, s_full, _ = be.svd(dev)
    np.testing.assert_allclose(np.sqrt(w), s_full, rtol=1e-9)
    _, s_top, _ = be.truncated_svd(dev, 5)
    np.testing.assert_allclose(s_top, s_full[:5], rtol=1e-9)


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_CUPY, reason=f"needs CuPy and a CUDA device: {CUPY_REASON}")
def test_ssa_decomposition_on_gpu_matches_numpy():
    rng = np.random.default_rng(3)
    t = np.arange(1250)
    z = np.stack([np.sin(2 * np.pi * t / p) + 0.01 * t + 0.2 * rng.normal(size=t.size) for p in (20, 33, 50)])
    cpu, gpu = ab.get_backend("numpy"), ab.get_backend("cupy")
    for stacked in (False, True):
        d_cpu = decompose(z, 120, 0.95, cpu, stacked=stacked)
        d_gpu = decompose(z, 120, 0.95, gpu, stacked=stacked)
        np.testing.assert_allclose(
            gpu.to_host(d_gpu.eigvals), d_cpu.eigvals, rtol=1e-8, atol=1e-8 * float(d_cpu.eigvals.max())
        )
        assert np.array_equal(d_gpu.rank, d_cpu.rank)
        r_cpu = reconstruct(z, d_cpu.basis(np), np)
        r_gpu = gpu.to_host(reconstruct(gpu.to_device(z), d_gpu.basis(gpu.xp), gpu.xp))
        np.testing.assert_allclose(r_gpu, r_cpu, rtol=1e-7, atol=1e-9)
