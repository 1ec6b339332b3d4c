"""SAMoSSA-style forecaster: SSA signal of the log-price path + an AR model of the residual returns.

Model, on daily log returns ``r_t`` (see :mod:`.base` for units): the log-price path
``x_t = Σ r_s`` is split by SSA (:mod:`.ssa`, rank for ≥ ``energy`` of ``Σσ²``) into a slow signal
``s_t`` and the rest; the residual *returns* ``u_t = r_t − Δs_t`` follow an AR(p), ``p ≤ 2``
chosen by AIC (statsmodels ``ar_select_order``/``AutoReg``: OLS, so it always converges). The
cumulative log return over ``h`` sessions is forecast as ``(ŝ_{T+h} − ŝ_T) + Σ_{k≤h} û_{T+k}``;
its variance is the AR forecast-error variance of the *sum*, ``σ² Σ_{n<h} Ψ_n²`` with ``Ψ_n`` the
cumulated ψ-weights, floored at ``h · Var(r)``: the SSA signal of a random-walk path is itself
random, and ``u`` is high-passed (SSA took its slow part), so the AR variance of a *sum* of ``u``
alone understates that of a sum of returns (80 % intervals covered ~71 % at h = 5 without it).

Why AR(≤2) and not ARMA(1,1): on return-like residuals the MA term is weakly identified
(``φ ≈ −θ`` cancel), statsmodels' state-space ARMA(1,1) then takes 0.1–1.2 s per fit and warns
about its start parameters, while AR by OLS takes ~10 ms and is the same model class to first order.

Change points: CUSUM (:mod:`.changepoints`) on the returns; their count and last position go in
``FitDiagnostics.params``. A change point within the last ``recent_changepoint`` sessions that
leaves at least ``min_refit_obs`` sessions after it makes the model refit on data after it only.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from model_code.forecasting.array_backend import single_thread_blas
from model_code.forecasting.base import (
    HORIZONS,
    FitDiagnostics,
    FitFailed,
    FitState,
    Forecast,
    captured_fit,
    clean_returns,
    gaussian_forecast,
)
from model_code.forecasting.changepoints import DEFAULT_THRESHOLD, cusum_changepoints
from model_code.forecasting.ssa import SSAResult, cumulative_signal, reconstruct, ssa_return_forecast


def ar_cumulative_forecast(
    phi: np.ndarray, sigma2: np.ndarray, tail: np.ndarray, horizons: Sequence[int]
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std of ``Σ_{k≤h} u_{T+k}`` for AR(p) series, vectorized over series.

    ``phi`` is ``(N, p)`` (lag 1 first), ``sigma2`` ``(N,)`` innovation variances, ``tail`` ``(N, p)``
    the last ``p`` observations (oldest first). Returns two ``(N, len(horizons))`` arrays.
    """
    phi = np.atleast_2d(np.asarray(phi, dtype=np.float64))
    n, p = phi.shape
    steps = max(horizons)
    hist = np.zeros((n, p + steps))
    psi = np.zeros((n, p + steps))  # psi[:, p + j] = ψ_j, zeros before
    hist[:, :p] = np.asarray(tail, dtype=np.float64).reshape(n, p)
    psi[:, p] = 1.0
    for j in range(steps):
        lagged = hist[:, p + j - 1 :: -1][:, :p] if p else hist[:, :0]
        hist[:, p + j] = (phi * lagged).sum(1)
        if j:
            psi[:, p + j] = (phi * psi[:, p + j - 1 :: -1][:, :p]).sum(1)
    mean_cum = np.cumsum(hist[:, p:], axis=1)
    big_psi = np.cumsum(psi[:, p:], axis=1)
    var_cum = np.asarray(sigma2, dtype=np.float64).reshape(n, 1) * np.cumsum(big_psi**2, axis=1)
    cols = [h - 1 for h in horizons]
    return mean_cum[:, cols], np.sqrt(var_cum[:, cols])


def fit_ar(u: np.ndarray, max_order: int = 2) -> tuple[np.ndarray, float]:
    """AR coefficients (lag 1 first, no constant) chosen by AIC up to ``max_order``, and ``σ²``."""
    from statsmodels.tsa.ar_model import ar_select_order

    sel = ar_select_order(u, maxlag=max_order, trend="n", ic="aic")
    res = sel.model.fit()
    lags = list(sel.ar_lags or [])
    phi = np.zeros(max(lags) if lags else 0)
    for lag, value in zip(lags, np.atleast_1d(res.params), strict=True):
        phi[lag - 1] = value
    roots = np.roots(np.r_[1.0, -phi]) if phi.size else np.array([])
    if np.any(np.abs(roots) >= 0.999):
        return np.zeros(0), float(np.mean(u**2))  # non-stationary fit: fall back to white noise
    return phi, float(res.sigma2)


class Samossa:
    """SSA signal + AR residual forecaster of cumulative log returns (see module docstring).

    ``window`` is the SSA window ``L`` in sessions (capped at half the data), ``energy`` the
    share of ``Σσ²`` the signal keeps, ``recent_changepoint``/``min_refit_obs`` in sessions.
    """

    def __init__(
        self,
        window: int = 60,
        energy: float = 0.9,
        max_ar_order: int = 2,
        cp_threshold: float = DEFAULT_THRESHOLD,
        cp_min_segment: int = 20,
        recent_changepoint: int = 252,
        min_refit_obs: int = 120,
        min_obs: int = 60,
        method: str = "recurrent",
        backend: str | None = None,
        name: str = "samossa",
    ) -> None:
        self.name = name
        self.window, self.energy, self.max_ar_order = window, energy, max_ar_order
        self.cp_threshold, self.cp_min_segment = cp_threshold, cp_min_segment
        self.recent_changepoint, self.min_refit_obs, self.min_obs = recent_changepoint, min_refit_obs, min_obs
        self.method, self.backend = method, backend
        self._ssa: SSAResult | None = None
        self._phi = np.zeros(0)
        self._sigma2 = 0.0
        self._u_tail = np.zeros(0)
        self._window_used = 0
        self._r_var = 0.0
        self._seg_len = 0

    def fit(self, returns: np.ndarray) -> FitDiagnostics:
        """Fit on daily log returns (oldest first); raises :class:`FitFailed`."""
        diag = FitDiagnostics(model=self.name, n_obs=int(np.size(returns)))
        with captured_fit(diag), single_thread_blas():
            r = clean_returns(returns, self.min_obs, self.name)
            cps = cusum_changepoints(r, self.cp_threshold, self.cp_min_segment)
            last = cps[-1] if cps else -1
            start = last if cps and self.min_refit_obs <= r.size - last <= self.recent_changepoint else 0
            seg = r[start:]
            window = max(2, min(self.window, seg.size // 2))
            try:
                cum, increments, res = ssa_return_forecast(
                    seg, [1], window, self.energy, self.backend, self.method
                )
                u = seg[1:] - increments
                phi, sigma2 = fit_ar(u, self.max_ar_order)
            except (np.linalg.LinAlgError, ValueError) as exc:
                raise FitFailed(f"{self.name}: {type(exc).__name__}: {exc}") from exc
            if not (np.isfinite(cum).all() and np.isfinite(sigma2) and sigma2 > 0):
                raise FitFailed(f"{self.name}: non-finite signal forecast or residual variance")
            self._ssa, self._phi, self._sigma2, self._window_used = res, phi, sigma2, window
            self._r_var = float(np.var(seg))
            self._seg_len = int(seg.size)
            self._u_tail = u[u.size - phi.size :] if phi.size else np.zeros(0)
            diag.params.update(
                window=window,
                rank=res.rank,
                energy_captured=round(res.energy_captured, 6),
                ar_order=int(phi.size),
                ar_sigma2=sigma2,
                n_changepoints=len(cps),
                last_changepoint=last,
                refit_start=start,
                **{f"ar_phi{i + 1}": float(v) for i, v in enumerate(phi)},
            )
            if cps:
                diag.notes = f"CUSUM change points at {cps}; " + (
                    f"SSA refit on the {seg.size} sessions after position {start}"
                    if start
                    else "last one not recent/long enough to refit"
                )
        return diag

    def state(self) -> FitState:
        """The SSA basis and recurrence (arrays), the AR coefficients, variances and segment length."""
        if self._ssa is None:
            raise RuntimeError(f"{self.name}: state() before a successful fit()")
        return FitState(
            self.name,
            self._seg_len,
            {
                "window": self._window_used,
                "rank": int(self._ssa.rank),
                "segment": self._seg_len,
                "phi": self._phi.tolist(),
                "sigma2": self._sigma2,
                "r_var": self._r_var,
                "method": self.method,
            },
            {"basis": np.asarray(self._ssa.basis), "lrr": np.asarray(self._ssa.lrr)},
        )

    def load_state(self, state: FitState) -> None:
        """Restore a stored fit; ``update`` projects data on its basis."""
        p = state.params
        self._window_used, self._seg_len = int(p["window"]), int(p["segment"])
        self._phi = np.asarray(p["phi"], dtype=np.float64)
        self._sigma2, self._r_var, self.method = float(p["sigma2"]), float(p["r_var"]), str(p["method"])
        self._basis = np.asarray(state.arrays["basis"], dtype=np.float64)
        self._lrr = np.asarray(state.arrays["lrr"], dtype=np.float64)
        self._rank = int(p["rank"])
        self._ssa = None

    def update(self, returns: np.ndarray, new: int) -> None:
        """Project the last ``segment`` returns' log-price path (anchored at the origin, as in a
        fit) on the stored basis; the residual returns' tail comes from that projection, the AR
        coefficients, variances and the recurrence stay the fit's."""
        r = clean_returns(returns, self._seg_len, self.name)[-self._seg_len :]
        path = np.cumsum(r)
        x = path - path[-1]
        with single_thread_blas():
            recon = reconstruct(x, self._basis)
        u = r[1:] - np.diff(recon)
        p = self._phi.size
        self._u_tail = u[u.size - p :] if p else np.zeros(0)
        self._ssa = SSAResult(x, self._window_used, np.zeros(0), self._rank, recon, self._basis, self._lrr)

    def forecast(self, horizons: Sequence[int] = HORIZONS) -> list[Forecast]:
        """Cumulative log-return forecasts with 80/95 % intervals for each horizon (sessions)."""
        if self._ssa is None:
            raise RuntimeError(f"{self.name}: forecast() before a successful fit()")
        horizons = [int(h) for h in horizons]
        signal = cumulative_signal(self._ssa, horizons, self.method)
        mean, std = ar_cumulative_forecast(
            self._phi[None, :], np.array([self._sigma2]), self._u_tail[None, :], horizons
        )
        std = np.sqrt(np.maximum(std[0] ** 2, self._r_var * np.asarray(horizons)))
        return [
            gaussian_forecast(self.name, h, signal[i] + mean[0, i], std[i], vol=std[i])
            for i, h in enumerate(horizons)
        ]
