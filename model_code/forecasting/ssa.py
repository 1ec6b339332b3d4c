"""Singular Spectrum Analysis (SSA): decomposition, reconstruction and recurrent/vector forecasts.

The fast path never forms a full SVD of the ``L×K`` trajectory (Hankel) matrix ``X``: it builds
the ``L×L`` lag-covariance ``C = X Xᵀ`` (summed over series for multivariate SSA) and takes its
``eigh``; eigenvalues are squared singular values, eigenvectors the left singular vectors. The
rank ``r`` is the smallest capturing ``energy`` (default 90 %) of ``Σσ²``. The rank-``r``
reconstruction is diagonal-averaged with FFT convolutions, batched over series, so everything
is array-shaped and runs on NumPy or CuPy (:mod:`.array_backend`). Forecasts extend the
reconstruction with the linear recurrence (LRR) from the leading eigenvectors (recurrent SSA)
or, for one series, by vector SSA. :func:`full_svd_ssa_reference` is the textbook way (full
``numpy.linalg.svd`` of ``X``, explicit anti-diagonal averaging), kept for tests and benchmarks.

On returns vs prices: SSA is applied to the cumulative log-price path ``x_t = Σ_{s≤t} r_s``, not
to returns. Daily returns are close to white noise, whose spectrum is flat, so a 90 %-energy rank
would keep ~90 % of ``L`` noise components and "forecast" noise; on the log-price path the energy
is concentrated in a few slow (trend/cycle) components, which is what SSA separates and what its
LRR can extrapolate. :func:`ssa_return_forecast` converts the path forecast back to the unit of
:mod:`.base`: cumulative log return ``ŝ_{T+h} − ŝ_T`` over ``h`` sessions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.fft import next_fast_len

from model_code.forecasting.array_backend import Backend, resolve, single_thread_blas


def hankel(x: Any, window: int, xp: Any = np) -> Any:
    """Trajectory matrices ``(..., L, K)`` of series ``x`` (``..., T``), ``K = T − L + 1``."""
    k = x.shape[-1] - window + 1
    return x[..., xp.arange(window)[:, None] + xp.arange(k)[None, :]]


def _prefix_lag_products(z: Any, zt: Any, a: Any, window: int, xp: Any) -> Any:
    """``W[i, d, n] = Σ_{k<a_n} z_{i+k} z_{i+k+d}`` (``L×L×N``; only ``i + d < L`` is meaningful).

    ``z`` is ``N×T`` and ``zt`` its time-major copy (``T×N``); ``a`` holds per-series bounds ``≤ K``.
    """
    n, t = z.shape
    nfft = next_fast_len(t, real=True)
    masked = z * (xp.arange(t)[None, :] < a[:, None])
    spec = xp.conj(xp.fft.rfft(masked, nfft)) * xp.fft.rfft(z, nfft)
    first = xp.fft.irfft(spec, nfft)[:, :window].T  # first[d] = Σ_{k<a} z_k z_{k+d}, by FFT
    m, d, col = xp.arange(window - 1)[:, None, None], xp.arange(window)[None, :, None], xp.arange(n)
    top = t - 1
    step = (
        zt[xp.minimum(m + a, top), col] * zt[xp.minimum(m + a + d, top), col]
        - zt[m, col] * zt[xp.minimum(m + d, top), col]
    )  # row i+1 minus row i, along a diagonal
    return first[None] + xp.concatenate([xp.zeros((1, window, n)), xp.cumsum(step, axis=0)])


def lag_covariance(
    z: Any,
    window: int,
    backend: Backend,
    stacked: bool = False,
    post_start: Any = None,
    post_weight: float = 1.0,
) -> Any:
    """``Σ_k w_k X_k X_kᵀ`` for series ``z`` (``N×T``): ``(N, L, L)``, or ``(L, L)`` summed if ``stacked``.

    Never forms a trajectory matrix: the first row ``C[0, d]`` comes from one FFT cross-correlation
    and each diagonal is updated by ``C[i+1, i+1+d] = C[i, i+d] + z_{i+K} z_{i+K+d} − z_i z_{i+d}``.
    Optional step weights: lagged vectors (columns ``k``) from ``post_start[n]`` on count
    ``post_weight`` times, earlier ones once.
    """
    xp = backend.xp
    n, t = z.shape
    k = t - window + 1
    zt = xp.ascontiguousarray(z.T)
    w = _prefix_lag_products(z, zt, xp.full(n, k), window, xp)
    start = None if post_start is None else xp.clip(xp.asarray(post_start), 0, k)
    if start is not None and post_weight != 1.0 and bool((start < k).any()):
        w = w + (post_weight - 1.0) * (w - _prefix_lag_products(z, zt, start, window, xp))
    if stacked:
        w = w.sum(-1, keepdims=True)
    ii, dd = np.nonzero(np.add.outer(np.arange(window), np.arange(window)) < window)
    ii, dd = xp.asarray(ii), xp.asarray(dd)
    out = xp.empty((w.shape[-1], window, window))
    out[:, ii, ii + dd] = w[ii, dd].T
    out[:, ii + dd, ii] = w[ii, dd].T
    return out[0] if stacked else out


def select_rank(eigvals: Any, energy: float, xp: Any = np) -> Any:
    """Smallest rank whose leading eigenvalues hold ≥ ``energy`` of the total (``...`` ints, ≤ L−1)."""
    total = xp.maximum(eigvals.sum(-1, keepdims=True), 1e-300)
    share = xp.cumsum(eigvals, axis=-1) / total
    rank = (share < energy - 1e-12).sum(-1) + 1
    return xp.clip(rank, 1, eigvals.shape[-1] - 1)


@dataclass
class Decomposition:
    """Eigen-decomposition of lag-covariance(s): eigenvalues ``σ²`` descending, eigenvectors in columns."""

    eigvals: Any
    eigvecs: Any
    rank: np.ndarray  # host ints, shape eigvals.shape[:-1] (0-d when stacked)
    window: int

    def basis(self, xp: Any = np) -> Any:
        """Leading eigenvectors ``(..., L, r_max)``, columns beyond each series' rank zeroed."""
        r_max = int(self.rank.max())
        keep = xp.arange(r_max) < xp.asarray(self.rank)[..., None]
        return self.eigvecs[..., :r_max] * keep[..., None, :]


def decompose(
    z: Any,
    window: int,
    energy: float = 0.9,
    backend: Backend | str | None = None,
    stacked: bool = False,
    rank: int | None = None,
    post_start: Any = None,
    post_weight: float = 1.0,
) -> Decomposition:
    """``eigh`` of the lag-covariance of ``z`` (``N×T``): one per series, or one for all if ``stacked``.

    ``post_start``/``post_weight``: step weights of lagged vectors, see :func:`lag_covariance`.
    """
    be = resolve(backend)
    xp = be.xp
    z = be.to_device(z)
    if z.ndim == 1:
        z, stacked = z[None, :], True
    if not 2 <= window <= z.shape[-1] // 2 + 1:
        raise ValueError(f"SSA window {window} must be in [2, T/2 + 1] for T={z.shape[-1]}")
    cov = lag_covariance(z, window, be, stacked, post_start, post_weight)
    with single_thread_blas():
        vals, vecs = be.eigh(cov)
    vals = xp.maximum(vals, 0.0)
    ranks = select_rank(vals, energy, xp) if rank is None else xp.full(vals.shape[:-1], rank)
    return Decomposition(vals, vecs, np.asarray(be.to_host(ranks)).astype(int), window)


def reconstruct(z: Any, basis: Any, xp: Any = np) -> Any:
    """Diagonal-averaged projection of each trajectory matrix on ``basis``: series ``(..., T)``.

    ``basis`` is ``(L, r)`` (shared, multivariate SSA) or ``(..., L, r)`` per series. Uses
    ``Σ_j conv(U_j, X̂ᵀU_j)`` with FFTs instead of forming any ``L×K`` matrix.
    """
    t = z.shape[-1]
    window = basis.shape[-2]
    k = t - window + 1
    n = next_fast_len(t + window - 1, real=True)
    ut = xp.swapaxes(basis, -1, -2)
    zf = xp.fft.rfft(z, n)[..., None, :]
    proj = xp.fft.irfft(zf * xp.fft.rfft(ut[..., ::-1], n), n)[..., window - 1 : window - 1 + k]
    num = xp.fft.irfft((xp.fft.rfft(ut, n) * xp.fft.rfft(proj, n)).sum(-2), n)[..., :t]
    idx = xp.arange(t)
    counts = xp.minimum(xp.minimum(idx + 1, t - idx), min(window, k))
    return num / counts


def lrr_coefficients(basis: Any, xp: Any = np) -> Any:
    """LRR ``R`` (``..., L−1``) with ``y_{t} = R · y_{t−L+1..t−1}``; a random walk (R = e_last) if ``ν² ≈ 1``."""
    pi = basis[..., -1, :]
    nu2 = (pi * pi).sum(-1)
    r = (basis[..., :-1, :] * pi[..., None, :]).sum(-1) / xp.maximum(1.0 - nu2, 1e-12)[..., None]
    walk = xp.zeros_like(r)
    walk[..., -1] = 1.0
    return xp.where((nu2 < 1.0 - 1e-9)[..., None], r, walk)


def recurrent_forecast(series: Any, lrr: Any, steps: int, xp: Any = np) -> Any:
    """Continue ``series`` (``..., T``) by ``steps`` values of the recurrence ``lrr``: ``(..., steps)``."""
    m = lrr.shape[-1]
    ext = xp.concatenate([series[..., series.shape[-1] - m :], xp.zeros(series.shape[:-1] + (steps,))], -1)
    for i in range(steps):
        ext[..., m + i] = (ext[..., i : i + m] * lrr).sum(-1)
    return ext[..., m:]


def diagonal_average(mat: np.ndarray) -> np.ndarray:
    """Textbook Hankelization: mean over each anti-diagonal of ``mat`` (``L×K`` → ``L+K−1``)."""
    window, k = mat.shape
    out = np.zeros(window + k - 1)
    counts = np.zeros(window + k - 1)
    for i in range(window):
        out[i : i + k] += mat[i]
        counts[i : i + k] += 1
    return out / counts


def vector_forecast(series: np.ndarray, basis: np.ndarray, steps: int) -> np.ndarray:
    """Vector SSA forecast (Golyandina & Zhigljavsky, 2013, §3.2) of one reconstructed series."""
    window, t = basis.shape[0], series.shape[0]
    pi, low = basis[-1], basis[:-1]
    nu2 = float(pi @ pi)
    if nu2 >= 1.0 - 1e-9:
        return np.full(steps, series[-1])
    r = low @ pi / (1.0 - nu2)
    proj = low @ low.T + (1.0 - nu2) * np.outer(r, r)
    cols = list(hankel(series, window).T)
    for _ in range(steps + window - 1):
        tail = cols[-1][1:]
        cols.append(np.concatenate([proj @ tail, [r @ tail]]))
    return diagonal_average(np.array(cols).T)[t : t + steps]


@dataclass
class SSAResult:
    """One series' SSA: singular values, chosen rank, reconstruction and forecasting recurrence."""

    series: np.ndarray
    window: int
    singular_values: np.ndarray
    rank: int
    reconstruction: np.ndarray
    basis: np.ndarray
    lrr: np.ndarray

    @property
    def energy_captured(self) -> float:
        """Share of ``Σσ²`` held by the leading ``rank`` components (0–1)."""
        s2 = self.singular_values**2
        return float(s2[: self.rank].sum() / max(s2.sum(), 1e-300))

    def forecast(self, steps: int, method: str = "recurrent") -> np.ndarray:
        """The next ``steps`` values of the signal (same unit as the series): recurrent or vector SSA."""
        return forecast_path(self.reconstruction, self.basis, self.lrr, steps, method)


def forecast_path(
    series: np.ndarray, basis: np.ndarray, lrr: np.ndarray, steps: int, method: str = "recurrent"
) -> np.ndarray:
    """Continue a reconstructed ``series`` by ``steps`` values: recurrent (``lrr``) or vector SSA."""
    if method == "recurrent":
        return recurrent_forecast(series, lrr, steps)
    if method == "vector":
        return vector_forecast(series, basis, steps)
    raise ValueError(f"unknown SSA forecast method {method!r}; use 'recurrent' or 'vector'")


def ssa(
    x: np.ndarray,
    window: int,
    energy: float = 0.9,
    rank: int | None = None,
    backend: Backend | str | None = None,
    method: str = "eigh",
) -> SSAResult:
    """SSA of one series ``x`` via ``eigh`` of its lag-covariance (or ``method="svds"``, truncated)."""
    be = resolve(backend)
    x = np.asarray(x, dtype=np.float64)
    if method == "svds":
        return _ssa_svds(x, window, energy, rank, be)
    if method != "eigh":
        raise ValueError(f"unknown SSA decomposition {method!r}; use 'eigh' or 'svds'")
    dec = decompose(x, window, energy, be, rank=rank)
    basis = dec.basis(be.xp)
    recon = reconstruct(be.to_device(x), basis, be.xp)
    return SSAResult(
        x,
        window,
        np.sqrt(be.to_host(dec.eigvals)),
        int(dec.rank),
        be.to_host(recon),
        be.to_host(basis),
        be.to_host(lrr_coefficients(basis, be.xp)),
    )


def _ssa_svds(x: np.ndarray, window: int, energy: float, rank: int | None, be: Backend) -> SSAResult:
    """Truncated-SVD variant: grow ``k`` until the leading ``k`` singular values hold ``energy``."""
    xp = be.xp
    traj = hankel(be.to_device(x), window, xp)
    total = float((traj * traj).sum())
    k = min(rank or 8, window - 2)
    while True:
        u, s, _ = be.truncated_svd(traj, k)
        share = be.to_host(xp.cumsum(s * s)) / max(total, 1e-300)
        if rank is not None or share[-1] >= energy or k >= window - 2:
            break
        k = min(2 * k, window - 2)
    r = rank or int(min(np.searchsorted(share, energy - 1e-12) + 1, k))
    basis = u[:, :r]
    recon = reconstruct(be.to_device(x), basis, xp)
    return SSAResult(
        x,
        window,
        be.to_host(s),
        r,
        be.to_host(recon),
        be.to_host(basis),
        be.to_host(lrr_coefficients(basis, xp)),
    )


def full_svd_ssa_reference(
    x: np.ndarray, window: int, energy: float = 0.9, rank: int | None = None
) -> SSAResult:
    """The library-default way: full ``numpy.linalg.svd`` of ``X`` and anti-diagonal averaging (slow)."""
    x = np.asarray(x, dtype=np.float64)
    traj = hankel(x, window)
    u, s, vt = np.linalg.svd(traj)
    r = int(rank or select_rank(s * s, energy))
    recon = diagonal_average((u[:, :r] * s[:r]) @ vt[:r])
    return SSAResult(x, window, s, r, recon, u[:, :r], lrr_coefficients(u[:, :r]))


def cumulative_signal(res: SSAResult, horizons: Sequence[int], method: str = "recurrent") -> np.ndarray:
    """Signal forecast of a log-price-path SSA as cumulative log returns per horizon: ``f_{T+h} − f_T``.

    ``f`` continues the reconstruction from ``T−1``, so ``f_T`` is the model's own nowcast of the
    last value: for a series that obeys the LRR exactly ``f_T = ŝ_T``; for a random-walk path it
    removes the spurious first-step jump from the reconstruction not obeying the LRR at its end.
    """
    path = forecast_path(res.reconstruction[:-1], res.basis, res.lrr, max(horizons) + 1, method)
    return np.array([path[h] - path[0] for h in horizons])


def ssa_return_forecast(
    returns: np.ndarray,
    horizons: Sequence[int],
    window: int,
    energy: float = 0.9,
    backend: Backend | str | None = None,
    method: str = "recurrent",
) -> tuple[np.ndarray, np.ndarray, SSAResult]:
    """SSA of the log-price path of ``returns``: (cumulative signal log return per horizon, signal
    daily increments ``Δŝ_t`` for ``t = 2..T`` (aligned with ``returns[1:]``), the :class:`SSAResult`).

    The path is anchored at the forecast origin (``x_T = 0``): SSA is not shift-invariant, and an
    LRR whose coefficients do not sum to exactly 1 would turn a far-from-zero level into drift.
    """
    path = np.cumsum(np.asarray(returns, dtype=np.float64))
    res = ssa(path - path[-1], window, energy, backend=backend)
    return cumulative_signal(res, horizons, method), np.diff(res.reconstruction), res
