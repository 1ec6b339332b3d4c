"""MSSA-RL: one multivariate SSA over the universe, change-point weighting and a Q-learning router.

Multivariate SSA (horizontal stacking): each ticker's log-price path, anchored at the forecast
origin and scaled by its return std (so no ticker dominates by volatility), gives a trajectory
matrix ``X_n`` (``L×K``); ``[X_1 … X_N]`` shares one set of eigenvectors, found by ONE ``eigh``
of ``Σ_n X_n W_n X_nᵀ`` (:func:`mssa_decompose`). Change-point weighting: ``W_n`` is diagonal,
weight ``post_cp_weight`` for lagged vectors (rows of the ``(N·K)×L`` stacked trajectory matrix,
scaled by ``√w``) that end at or after ticker ``n``'s last CUSUM change point, 1 before it, so
the common subspace leans towards the current regime. Each ticker's signal is its projection on
that subspace (diagonal-averaged), forecast by the common LRR; residual returns get an AR(1).

Router: per ticker a tabular Q-learning policy (:class:`QPolicy`) picks an action in
:data:`ACTIONS`: ``keep`` (the MSSA forecast), ``refit_window`` (that ticker's own SSA on the last
``refit_window`` sessions) or ``fallback_ssa`` (its own SSA on the full history). State: the
discretized standardized absolute error of the ``keep`` forecast at the previous origin, and
whether a change point is recent. It learns ONLY from walk-forward episodes whose outcomes are
realized by ``as_of`` (origins ``as_of − k·h``, reward = −standardized error of the action taken),
and every step is first scored out of sample (greedy action, Q learned from earlier origins only).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from model_code.forecasting.array_backend import Backend, resolve
from model_code.forecasting.base import (
    HORIZONS,
    FitDiagnostics,
    FitFailed,
    FitState,
    Forecast,
    captured_fit,
    gaussian_forecast,
)
from model_code.forecasting.changepoints import DEFAULT_THRESHOLD, cusum_changepoints
from model_code.forecasting.samossa import ar_cumulative_forecast
from model_code.forecasting.ssa import (
    Decomposition,
    decompose,
    lrr_coefficients,
    reconstruct,
    recurrent_forecast,
)

ACTIONS: tuple[str, ...] = ("keep", "refit_window", "fallback_ssa")


class QPolicy:
    """Tabular Q-learning with ε-greedy exploration from a seeded generator.

    Greedy choices only consider actions already tried in that state (``keep``, index 0, when
    none is), so an untried action never wins just because its zero start value beats the
    negative (error) rewards of the tried ones.
    """

    def __init__(
        self,
        n_states: int,
        n_actions: int = len(ACTIONS),
        alpha: float = 0.2,
        gamma: float = 0.3,
        epsilon: float = 0.1,
        seed: int = 0,
    ) -> None:
        self.q = np.zeros((n_states, n_actions))
        self.visits = np.zeros((n_states, n_actions), dtype=np.int64)
        self.alpha, self.gamma, self.epsilon = alpha, gamma, epsilon
        self._rng = np.random.default_rng(seed)

    def act(self, state: int, explore: bool = False) -> int:
        """Greedy action among tried ones (ties → lowest index), or ε-random when ``explore``."""
        if explore and self._rng.random() < self.epsilon:
            return int(self._rng.integers(self.q.shape[1]))
        tried = self.visits[state] > 0
        return int(np.argmax(np.where(tried, self.q[state], -np.inf))) if tried.any() else 0

    def update(self, state: int, action: int, reward: float, next_state: int) -> float:
        """One Q-learning step; returns the TD error."""
        td = reward + self.gamma * float(self.q[next_state].max()) - self.q[state, action]
        self.q[state, action] += self.alpha * td
        self.visits[state, action] += 1
        return float(td)


def mssa_decompose(
    z: Any, window: int, energy: float, backend: Backend, post_start: Any = None, post_weight: float = 1.0
) -> Decomposition:
    """The ONE decomposition for all series ``z`` (``N×T``): ``eigh`` of the stacked lag-covariance."""
    return decompose(z, window, energy, backend, stacked=True, post_start=post_start, post_weight=post_weight)


@dataclass
class _Route:
    """A fitted SSA route for N tickers: what forecasting needs (host arrays except ``tail``/``lrr``)."""

    tail: Any  # (N, L) last reconstructed values of the scaled, anchored path
    lrr: Any  # (L−1,) shared or (N, L−1)
    sigma: np.ndarray  # (N,) daily return std used for scaling
    phi: np.ndarray  # (N,) AR(1) coefficient of residual returns
    sigma2: np.ndarray  # (N,) AR(1) innovation variance
    u_last: np.ndarray  # (N,) last residual return
    rank: np.ndarray
    basis: Any = None  # (L, r) shared or (N, L, r): what a stored fit projects later data on
    rows: int = 0  # sessions of returns the route was fitted on

    def forecast(self, horizons: Sequence[int], be: Backend) -> tuple[np.ndarray, np.ndarray]:
        """Mean and std ``(N, H)`` of cumulative log returns (signal ``f_{T+h} − f_T`` + AR(1)); the
        std is floored at ``σ√h`` (see :mod:`.samossa`: the AR variance of high-passed residuals is low)."""
        path = be.to_host(recurrent_forecast(self.tail[:, :-1], self.lrr, max(horizons) + 1, be.xp))
        signal = (path[:, list(horizons)] - path[:, :1]) * self.sigma[:, None]
        mean, std = ar_cumulative_forecast(self.phi[:, None], self.sigma2, self.u_last[:, None], horizons)
        floor = self.sigma[:, None] ** 2 * np.asarray(horizons)[None, :]  # h·Var(r), as in samossa
        return signal + mean, np.sqrt(np.maximum(std**2, floor))


def _fit_route(
    r: np.ndarray,
    window: int,
    energy: float,
    be: Backend,
    stacked: bool,
    post_start: np.ndarray | None = None,
    post_weight: float = 1.0,
) -> _Route:
    """SSA route on returns ``r`` (``T×N``): one stacked decomposition, or one per ticker (batched)."""
    window = max(2, min(window, r.shape[0] // 2))
    sigma = r.std(0)
    sigma = np.where(sigma > 0, sigma, 1.0)
    path = np.cumsum(r, 0)
    z = be.to_device(((path - path[-1]) / sigma).T)
    if stacked:
        dec = mssa_decompose(z, window, energy, be, post_start, post_weight)
    else:
        dec = decompose(z, window, energy, be)
    basis = dec.basis(be.xp)
    recon = reconstruct(z, basis, be.xp)
    increments = be.to_host(be.xp.diff(recon, axis=1)) * sigma[:, None]
    u = r.T[:, 1:] - increments
    num, den = (u[:, 1:] * u[:, :-1]).sum(1), (u[:, :-1] ** 2).sum(1)
    phi = np.clip(num / np.where(den > 0, den, 1.0), -0.9, 0.9)
    sigma2 = ((u[:, 1:] - phi[:, None] * u[:, :-1]) ** 2).mean(1)
    return _Route(
        recon[:, -window:],
        lrr_coefficients(basis, be.xp),
        sigma,
        phi,
        sigma2,
        u[:, -1],
        dec.rank,
        basis,
        int(r.shape[0]),
    )


def _project_route(
    r: np.ndarray,
    basis: Any,
    lrr: Any,
    sigma: np.ndarray,
    phi: np.ndarray,
    sigma2: np.ndarray,
    rank: Any,
    be: Backend,
) -> _Route:
    """A route with fixed basis, recurrence, scale and AR(1) on new returns ``r`` (``T×N``): the
    reconstruction and the last residual are recomputed exactly as :func:`_fit_route` does."""
    window = basis.shape[-2]
    path = np.cumsum(r, 0)
    z = be.to_device(((path - path[-1]) / sigma).T)
    basis = be.to_device(basis)
    recon = reconstruct(z, basis, be.xp)
    increments = be.to_host(be.xp.diff(recon, axis=1)) * sigma[:, None]
    u = r.T[:, 1:] - increments
    return _Route(
        recon[:, -window:], be.to_device(lrr), sigma, phi, sigma2, u[:, -1], rank, basis, r.shape[0]
    )


class MssaRl:
    """Multivariate SSA over a universe with change-point weighting and a Q-learning router.

    ``window`` (``L``), ``refit_window``, ``episode_horizon``, ``recent_changepoint`` are in
    sessions; ``energy`` is the share of ``Σσ²`` kept; ``error_bins`` split the standardized
    absolute error (units of the horizon's return std) into states; ``n_episodes`` is the number of
    walk-forward learning steps (``n_episodes + 1`` origins, ``episode_horizon`` sessions apart;
    0 disables learning, every ticker then keeps the MSSA forecast). ``fit(..., as_of=T)`` uses
    rows ``[:T]`` only, so data after ``as_of`` can never leak into the fit.
    """

    name = "mssa_rl"

    def __init__(
        self,
        window: int = 60,
        energy: float = 0.9,
        post_cp_weight: float = 2.0,
        cp_threshold: float = DEFAULT_THRESHOLD,
        cp_min_segment: int = 20,
        recent_changepoint: int = 63,
        refit_window: int = 250,
        episode_horizon: int = 5,
        n_episodes: int = 12,
        error_bins: Sequence[float] = (0.5, 1.0),
        alpha: float = 0.2,
        gamma: float = 0.3,
        epsilon: float = 0.1,
        seed: int = 0,
        backend: Backend | str | None = None,
    ) -> None:
        self.window, self.energy, self.post_cp_weight = window, energy, post_cp_weight
        self.cp_threshold, self.cp_min_segment, self.recent_changepoint = (
            cp_threshold,
            cp_min_segment,
            recent_changepoint,
        )
        self.refit_window, self.episode_horizon, self.n_episodes = refit_window, episode_horizon, n_episodes
        self.error_bins = np.asarray(error_bins, dtype=np.float64)
        self.alpha, self.gamma, self.epsilon, self.seed = alpha, gamma, epsilon, seed
        self.backend = backend
        self.min_obs = 3 * window
        self.tickers: list[str] = []
        self.actions_: dict[str, str] = {}
        self.changepoints_: dict[str, list[int]] = {}
        self.episode_origins_: list[int] = []
        self.policy_: QPolicy | None = None
        self._routes: dict[str, _Route] = {}

    @property
    def n_states(self) -> int:
        return 2 * (len(self.error_bins) + 1)

    def _changepoints(self, r: np.ndarray) -> tuple[list[list[int]], np.ndarray, np.ndarray]:
        """Per-ticker change points of ``r`` (``T×N``), first up-weighted lagged vector and recent-flags.

        Lagged vector ``k`` covers path positions ``k..k+L−1``; it is up-weighted when it ends at or
        after the last change point ``c``, i.e. ``k ≥ c − L + 1``; ``K`` (none) without a change point.
        """
        t, window = r.shape[0], max(2, min(self.window, r.shape[0] // 2))
        cps = [cusum_changepoints(r[:, i], self.cp_threshold, self.cp_min_segment) for i in range(r.shape[1])]
        last = np.array([c[-1] if c else -1 for c in cps])
        post_start = np.where(last >= 0, np.maximum(last - window + 1, 0), t - window + 1)
        recent = (last >= 0) & (t - last <= self.recent_changepoint)
        return cps, post_start, recent

    def _routes_at(
        self, r: np.ndarray, post_start: np.ndarray, be: Backend, needed: Sequence[str] = ACTIONS
    ) -> dict[str, _Route]:
        """Candidate routes fitted on ``r`` (``T×N``, data up to one origin only); ``keep`` always."""
        routes = {"keep": _fit_route(r, self.window, self.energy, be, True, post_start, self.post_cp_weight)}
        if "refit_window" in needed:
            routes["refit_window"] = _fit_route(r[-self.refit_window :], self.window, self.energy, be, False)
        if "fallback_ssa" in needed:
            routes["fallback_ssa"] = _fit_route(r, self.window, self.energy, be, False)
        return routes

    def _states(self, keep_error: np.ndarray, recent: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.error_bins, keep_error) * 2 + recent.astype(int)

    def fit(self, returns: np.ndarray, tickers: Sequence[str], as_of: int | None = None) -> FitDiagnostics:
        """Fit on daily log returns ``T×N`` (oldest first), using rows ``[:as_of]`` only; :class:`FitFailed`."""
        r = np.asarray(returns, dtype=np.float64)
        if r.ndim != 2 or r.shape[1] != len(tickers):
            raise ValueError(f"returns must be T×N with N={len(tickers)} columns; got shape {r.shape}")
        r = r[:as_of] if as_of is not None else r
        diag = FitDiagnostics(model=self.name, n_obs=int(r.shape[0]))
        with captured_fit(diag):
            if not np.isfinite(r).all():
                raise FitFailed(f"{self.name}: returns contain NaN or infinite values")
            if r.shape[0] < self.min_obs:
                raise FitFailed(f"{self.name}: needs at least {self.min_obs} sessions, got {r.shape[0]}")
            be = resolve(self.backend)
            h, t = self.episode_horizon, r.shape[0]
            steps_back = range(self.n_episodes + 1, 0, -1) if self.n_episodes > 0 else range(0)
            origins = [t - h * k for k in steps_back if t - h * k >= self.min_obs]
            errors, flags = [], []
            for o in origins:  # walk-forward: fit on r[:o], outcome r[o:o+h] realized by o + h <= t
                _, post_start, recent = self._changepoints(r[:o])
                routes = self._routes_at(r[:o], post_start, be)
                scale = r[:o].std(0) * np.sqrt(h) + 1e-12
                outcome = r[o : o + h].sum(0)
                errors.append(
                    np.stack(
                        [np.abs(outcome - routes[a].forecast([h], be)[0][:, 0]) / scale for a in ACTIONS]
                    )
                )
                flags.append(recent)
            cps, post_start, recent = self._changepoints(r)
            policy = QPolicy(self.n_states, len(ACTIONS), self.alpha, self.gamma, self.epsilon, self.seed)
            states = [
                self._states(errors[j][0], flags[j + 1] if j + 1 < len(flags) else recent)
                for j in range(len(errors))
            ]
            scored: dict[str, list[float]] = {a: [] for a in (*ACTIONS, "policy")}
            for j in range(1, len(errors)):
                s, s_next, e = states[j - 1], states[j], errors[j]
                greedy = [policy.act(int(si)) for si in s]  # out of sample: Q from origins < j only
                scored["policy"].extend(e[a, i] for i, a in enumerate(greedy))
                for k, a in enumerate(ACTIONS):
                    scored[a].extend(e[k])
                for i, si in enumerate(s):
                    a = policy.act(int(si), explore=True)
                    policy.update(int(si), a, -float(e[a, i]), int(s_next[i]))
            final_states = states[-1] if states else self._states(np.full(r.shape[1], 0.75), recent)
            self.tickers = list(tickers)
            self.policy_, self.episode_origins_ = policy, origins
            self.changepoints_ = dict(zip(self.tickers, cps, strict=True))
            self.actions_ = {
                tk: ACTIONS[policy.act(int(s))] for tk, s in zip(self.tickers, final_states, strict=True)
            }
            self._routes = self._routes_at(r, post_start, be, sorted(set(self.actions_.values())))
            diag.params.update(
                n_tickers=len(self.tickers),
                window=min(self.window, t // 2),
                rank=int(self._routes["keep"].rank),
                n_episodes=max(0, len(origins) - 1),
                episode_horizon=h,
                post_cp_weight=self.post_cp_weight,
                n_recent_changepoints=int(recent.sum()),
                **{f"oos_mae_{k}": round(float(np.mean(v)), 6) for k, v in scored.items() if v},
                **{f"n_{a}": sum(v == a for v in self.actions_.values()) for a in ACTIONS},
            )
            diag.notes = (
                "oos_mae_*: mean |error| / (σ√h) of walk-forward forecasts scored before each Q update"
            )
        return diag

    def states(self) -> dict[str, FitState]:
        """Per ticker, its chosen route as a stored fit (basis and recurrence as arrays; the scale,
        AR(1) and the route's data length as params), for :class:`MssaRlTicker`."""
        if not self._routes:
            raise RuntimeError(f"{self.name}: states() before a successful fit()")
        be = resolve(self.backend)
        out = {}
        for i, tk in enumerate(self.tickers):
            action = self.actions_[tk]
            rt = self._routes[action]
            basis = np.asarray(be.to_host(rt.basis))
            lrr = np.asarray(be.to_host(rt.lrr))
            rank = np.asarray(rt.rank)
            out[tk] = FitState(
                self.name,
                rt.rows,
                {
                    "action": action,
                    "rows": rt.rows,
                    "sigma": float(rt.sigma[i]),
                    "phi": float(rt.phi[i]),
                    "sigma2": float(rt.sigma2[i]),
                    "rank": int(rank if rank.ndim == 0 else rank[i]),
                },
                {"basis": basis if basis.ndim == 2 else basis[i], "lrr": lrr if lrr.ndim == 1 else lrr[i]},
            )
        return out

    def forecast(self, horizons: Sequence[int] = HORIZONS) -> dict[str, list[Forecast]]:
        """Per ticker, cumulative log-return forecasts with 80/95 % intervals from its chosen route."""
        if not self._routes:
            raise RuntimeError(f"{self.name}: forecast() before a successful fit()")
        be = resolve(self.backend)
        horizons = [int(h) for h in horizons]
        out = {a: self._routes[a].forecast(horizons, be) for a in set(self.actions_.values())}
        result: dict[str, list[Forecast]] = {}
        for i, tk in enumerate(self.tickers):
            mean, std = out[self.actions_[tk]]
            result[tk] = [
                gaussian_forecast(self.name, h, mean[i, j], std[i, j], vol=std[i, j])
                for j, h in enumerate(horizons)
            ]
        return result


class MssaRlTicker:
    """One ticker's stored MSSA-RL fit (:meth:`MssaRl.states`), applied to later data.

    The panel fit chose the ticker's route (``keep``: the common MSSA subspace; or its own SSA)
    and estimated its basis, recurrence, return scale and residual AR(1); ``update`` projects
    the ticker's last ``rows`` returns on that basis (anchored at the origin, scaled as in the
    fit) and ``forecast`` continues it, all estimates fixed. Per ticker, so it runs in the
    per-ticker workers; only refits need the whole panel.
    """

    name = "mssa_rl"

    def __init__(self, backend: Backend | str | None = None) -> None:
        self.backend = backend
        self._state: FitState | None = None
        self._route: _Route | None = None

    def load_state(self, state: FitState) -> None:
        self._state, self._route = state, None

    def update(self, returns: np.ndarray, new: int) -> None:
        if self._state is None:
            raise FitFailed(f"{self.name}: update() called before load_state()")
        p = self._state.params
        rows = int(p["rows"])
        r = np.asarray(returns, dtype=np.float64).ravel()
        if r.size < rows or not np.isfinite(r[-rows:]).all():
            raise FitFailed(f"{self.name}: needs {rows} finite returns to apply the stored fit, got {r.size}")
        be = resolve(self.backend)
        self._route = _project_route(
            r[-rows:, None],
            np.asarray(self._state.arrays["basis"], dtype=np.float64),
            np.asarray(self._state.arrays["lrr"], dtype=np.float64),
            np.array([p["sigma"]], dtype=np.float64),
            np.array([p["phi"]], dtype=np.float64),
            np.array([p["sigma2"]], dtype=np.float64),
            np.asarray(p["rank"]),
            be,
        )

    def forecast(self, horizons: Sequence[int] = HORIZONS) -> list[Forecast]:
        if self._route is None:
            raise FitFailed(f"{self.name}: forecast() before update()")
        horizons = [int(h) for h in horizons]
        mean, std = self._route.forecast(horizons, resolve(self.backend))
        return [
            gaussian_forecast(self.name, h, mean[0, j], std[0, j], vol=std[0, j])
            for j, h in enumerate(horizons)
        ]
