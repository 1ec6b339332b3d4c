"""GARCH-family volatility forecasters (``arch``) with Student-t errors and a constant mean.

Scaling: models are fitted on returns in *percent* (``100 * log return``). arch's optimizer
(SLSQP), its starting values and tolerances assume data with variance of order 1-1000; raw
daily log returns have variance ~1e-4 (``omega`` ~1e-6), which triggers arch's
``DataScaleWarning`` and poor convergence. Forecasts are scaled back (mean / 100, variance /
1e4), so :class:`Forecast` is in log-return units; the fitted ``params`` stay in percent units.

Speed: ``arch`` hands SLSQP its linear parameter constraints (``a @ x - b >= 0``) as one
Python function per row with no Jacobian, so SciPy finite-differences every row at every
iteration; on 1,250 returns that is 40-60 % of a fit. :func:`exact_linear_constraints` swaps in
the same constraints as one vector function with its exact Jacobian ``a`` for the duration of
our fits. The optimisation problem is unchanged (tests compare against unpatched ``arch``:
log-likelihoods agree to 1e-6); only wasted evaluations go.

Trust: EGARCH fits of heavy-tailed tickers are fragile in ``arch`` (SLSQP may stop at its
iteration limit, or report convergence at a log-likelihood far below the optimum, and where it
stops changes with the BLAS thread count). A fit stopped by the iteration limit is continued
from its last iterate and kept only if that does not lower the likelihood; any fit ending
below the (closed-form) constant-variance normal likelihood it nests is rejected as not a maximum.

Cumulative forecast for ``h`` sessions: mean ``h * mu``; with a constant mean the shocks are
martingale differences, so the variance is exactly the sum of the 1..h step conditional
variance forecasts and ``vol_forecast = sqrt(sum)``. GARCH and GJR use arch's analytic
multi-step variances; EGARCH has none beyond one step, so it uses ``method="simulation"``
with a seeded Student-t generator. Intervals: ``mean +/- t_nu quantile (scaled to unit
variance) * h-step std``. Exact for ``h = 1``; for ``h > 1`` the sum of shocks is closer to
normal than to ``t_nu`` (CLT), so the t quantile is slightly conservative at 95 %.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from scipy import stats

from model_code.forecasting.base import (
    HORIZONS,
    FitDiagnostics,
    FitFailed,
    FitState,
    Forecast,
    captured_fit,
    check_horizons,
    clean_returns,
)

MIN_OBS = 250
ITERATION_LIMIT = 9  # SLSQP exit mode "Iteration limit reached" (arch's convergence_flag)
RESTART_MAXITER = 500
NESTING_TOLERANCE = 0.5  # log-likelihood units: optimizer slack at a boundary optimum, not a bad fit
SCALE = 100.0  # log return -> percent
VARIANTS: dict[str, dict[str, object]] = {
    "garch": {"vol": "GARCH", "p": 1, "o": 0, "q": 1},
    "gjr": {"vol": "GARCH", "p": 1, "o": 1, "q": 1},
    "egarch": {"vol": "EGARCH", "p": 1, "o": 1, "q": 1},
}


def _linear_constraints(a: np.ndarray, b: np.ndarray) -> list[dict[str, object]]:
    """``a @ x - b >= 0`` as one SLSQP constraint with its exact Jacobian."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape[0] == 0:
        return []
    return [{"type": "ineq", "fun": lambda x, *_: a @ x - b, "jac": lambda x, *_: a}]


@contextmanager
def exact_linear_constraints() -> Iterator[None]:
    """Within the block, ``arch`` fits pass their linear constraints with exact Jacobians."""
    import arch.univariate.base as arch_base

    original = arch_base.constraint
    arch_base.constraint = _linear_constraints
    try:
        yield
    finally:
        arch_base.constraint = original


@lru_cache(maxsize=4096)
def _t_quantiles(nu: float) -> tuple[float, float]:
    """Student-t 0.90 and 0.975 quantiles for ``nu`` (cached: scipy's ppf costs ~0.3 ms a call and a
    stored fit's ``nu`` repeats every night)."""
    return float(stats.t.ppf(0.90, nu)), float(stats.t.ppf(0.975, nu))


def constant_variance_loglik(scaled: np.ndarray) -> float:
    """Closed-form log-likelihood of i.i.d. normal returns (sample mean and variance) on ``scaled``.

    Every variant nests the constant-variance Student-t model (alpha = gamma = beta = 0), which
    nests this normal one (nu -> inf), so a fit that ends below it stopped away from the maximum:
    EGARCH's SLSQP path on heavy-tailed tickers can "converge" thousands of units below it (and
    where it lands even depends on the BLAS thread count). Closed form, so the check is free.
    """
    x = np.asarray(scaled, dtype=np.float64)
    var = float(np.mean((x - x.mean()) ** 2))
    return -0.5 * x.size * (math.log(2.0 * math.pi * var) + 1.0)


class Garch:
    """``variant``: ``"garch"`` GARCH(1,1), ``"gjr"`` GJR-GARCH(1,1,1) or ``"egarch"``
    EGARCH(1,1) (Nelson's, with the sign term, arch ``o=1``); constant mean, Student-t errors.

    ``simulations`` / ``seed`` drive the EGARCH multi-step simulation (deterministic per seed).
    """

    def __init__(self, variant: str = "garch", simulations: int = 1000, seed: int = 20240601) -> None:
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {sorted(VARIANTS)}, got {variant!r}")
        self.variant, self.name = variant, variant
        self.simulations, self.seed = simulations, seed
        self.result_ = None
        self._conditioned = None  # the arch model a stored fit was applied to (update)
        self.params_: dict[str, float] = {}
        self.nfev_: int = 0
        self.forecast_warnings_: int = 0

    def _model(self, scaled: np.ndarray):
        from arch import arch_model

        return arch_model(scaled, mean="Constant", dist="t", rescale=False, **VARIANTS[self.variant])

    def fit(self, returns: np.ndarray, warm_start: Mapping[str, float] | None = None) -> FitDiagnostics:
        """Fit by ML on ``100 * returns``. ``warm_start``: a previous fit's :attr:`params_`
        (percent units) used as ``starting_values``; ignored (noted) if its names differ."""
        arr = clean_returns(returns, MIN_OBS, self.name)
        diag = FitDiagnostics(model=self.name, n_obs=int(arr.size))
        self.result_ = self._conditioned = None
        model = self._model(arr * SCALE)
        names = list(model._all_parameter_names())
        start = None
        if warm_start is not None:
            if set(names) <= set(warm_start) and all(math.isfinite(float(warm_start[k])) for k in names):
                start = np.array([float(warm_start[k]) for k in names])
            else:
                diag.notes = f"warm start ignored: expected parameters {names}"
        with captured_fit(diag):
            try:
                with exact_linear_constraints():
                    res = model.fit(disp="off", starting_values=start, show_warning=True)
                    if int(res.convergence_flag) == ITERATION_LIMIT:
                        # slow but progressing (EGARCH near the stationarity bound): continue from
                        # the last iterate; a cold start with more iterations can land in a far
                        # worse optimum (seen on the shared data, log-likelihood -8448 vs -2708)
                        again = model.fit(
                            disp="off",
                            starting_values=res.params.to_numpy(),
                            show_warning=True,
                            options={"maxiter": RESTART_MAXITER},
                        )
                        if again.loglikelihood < res.loglikelihood:  # never accept a worse optimum
                            diag.converged = False
                            raise FitFailed(
                                f"{self.name}: iteration limit, and the restart ended at a lower "
                                f"log-likelihood ({again.loglikelihood:.1f} < {res.loglikelihood:.1f})"
                            )
                        res = again
                        restart = "restarted from the last iterate after SLSQP's iteration limit"
                        diag.notes = f"{diag.notes}; {restart}" if diag.notes else restart
            except FitFailed:
                raise
            except Exception as exc:  # arch raises ValueError / LinAlgError on degenerate data
                raise FitFailed(f"{self.name}: fit raised {type(exc).__name__}: {exc}") from exc
        if int(res.convergence_flag) != 0:
            diag.converged = False
            raise FitFailed(f"{self.name}: optimizer did not converge (flag {res.convergence_flag})")
        floor = constant_variance_loglik(arr * SCALE)
        if res.loglikelihood < floor - NESTING_TOLERANCE:
            diag.converged = False
            raise FitFailed(
                f"{self.name}: converged to log-likelihood {res.loglikelihood:.1f}, below the "
                f"constant-variance normal model it nests ({floor:.1f}): not the maximum"
            )
        params = {str(k): float(v) for k, v in res.params.items()}
        if not all(math.isfinite(v) for v in params.values()):
            raise FitFailed(f"{self.name}: non-finite parameters {params}")
        opt = res.optimization_result
        self.result_, self.params_, self.nfev_ = res, params, int(getattr(opt, "nfev", 0))
        diag.params = {
            **params,
            "nfev": self.nfev_,
            "nit": int(getattr(opt, "nit", 0)),
            "warm_start": start is not None,
            "scale": SCALE,
        }
        return diag

    def state(self) -> FitState:
        """The fitted parameters (percent units, arch's order) and the forecast settings."""
        if self.result_ is None:
            raise FitFailed(f"{self.name}: state() called before a successful fit()")
        return FitState(
            self.name,
            int(self.result_.nobs),
            {
                "params": dict(self.params_),
                "variant": self.variant,
                "simulations": self.simulations,
                "seed": self.seed,
                "scale": SCALE,
            },
        )

    def load_state(self, state: FitState) -> None:
        """Restore a stored fit's parameters (``update`` then runs the variance recursion)."""
        p = state.params
        if p["variant"] != self.variant:
            raise ValueError(f"{self.name}: stored fit is a {p['variant']!r} model")
        self.params_ = {str(k): float(v) for k, v in p["params"].items()}
        self.simulations, self.seed = int(p["simulations"]), int(p["seed"])
        self.result_ = self._conditioned = None

    def update(self, returns: np.ndarray, new: int) -> None:
        """The conditional-variance recursion over ``returns`` with the stored parameters fixed
        (``arch``'s ``model.fix``: same backcast rule as a fit, no optimisation)."""
        if not self.params_:
            raise FitFailed(f"{self.name}: update() called before load_state()")
        arr = clean_returns(returns, MIN_OBS, self.name)
        model = self._model(arr * SCALE)
        self.result_, self._conditioned = None, model

    def _step_variances(self, hmax: int) -> np.ndarray:
        """Conditional variance forecasts for steps 1..hmax, percent**2, from the last return.

        What ``ARCHModelResult.forecast(reindex=False)`` computes for a constant-mean model (the
        same calls: residuals at the parameters, their backcast and variance bounds, the volatility
        process's forecast from the last observation), without building a results object or
        pandas frames; so a fitted model and a stored fit applied to the same data agree exactly.
        """
        model = self._conditioned if self._conditioned is not None else self.result_.model
        names = list(model._all_parameter_names())
        mp, vp, _ = model._parse_parameters(np.array([self.params_[k] for k in names]))
        resids = np.asarray(model.resids(mp), dtype=np.float64)
        vol = model.volatility
        backcast = vol.backcast(resids)
        bounds = vol.variance_bounds(resids, 2.0)
        kwargs: dict[str, object] = {}
        if self.variant == "egarch" and hmax > 1:
            nu = self.params_["nu"]
            gen = np.random.default_rng(self.seed)
            unit = math.sqrt((nu - 2.0) / nu)

            def draw(size: int | tuple[int, ...]) -> np.ndarray:
                return gen.standard_t(nu, size) * unit

            kwargs = {"method": "simulation", "simulations": self.simulations, "rng": draw}
        fc = vol.forecast(vp, resids, backcast, bounds, start=resids.size - 1, horizon=hmax, **kwargs)
        return np.asarray(fc.forecasts[-1], dtype=np.float64)

    def forecast(self, horizons: Sequence[int] = HORIZONS) -> list[Forecast]:
        """Cumulative log-return forecasts; ``vol_forecast`` = std of the h-step sum (log units)."""
        if self.result_ is None and self._conditioned is None:
            raise FitFailed(f"{self.name}: forecast() called before a successful fit()")
        hs = check_horizons(horizons)
        diag_warn = FitDiagnostics(model=self.name, n_obs=0)
        with captured_fit(diag_warn):
            cum_var = np.cumsum(self._step_variances(max(hs))) / SCALE**2
        self.forecast_warnings_ = diag_warn.warnings
        nu = self.params_["nu"]
        unit = math.sqrt((nu - 2.0) / nu)
        q80, q95 = _t_quantiles(nu)
        t80, t95 = q80 * unit, q95 * unit
        mu = self.params_["mu"] / SCALE
        out = []
        for h in hs:
            std, mean = math.sqrt(cum_var[h - 1]), mu * h
            if not (math.isfinite(std) and std > 0):
                raise FitFailed(f"{self.name}: invalid variance forecast at horizon {h}")
            out.append(
                Forecast(
                    self.name,
                    h,
                    mean,
                    mean - t80 * std,
                    mean + t80 * std,
                    mean - t95 * std,
                    mean + t95 * std,
                    vol_forecast=std,
                )
            )
        return out


@dataclass
class DefaultGarchResult:
    """Outcome of :func:`library_default_garch` (a benchmark reference, log-return units)."""

    params: dict[str, float]
    convergence_flag: int
    vol_by_horizon: dict[int, float]
    warnings: int
    warning_messages: list[str] = field(default_factory=list)


def library_default_garch(returns: np.ndarray, horizons: Sequence[int] = HORIZONS) -> DefaultGarchResult:
    """The "library-default way": ``arch_model(returns)`` (constant mean, GARCH(1,1), normal,
    raw units), cold ``fit(disp="off")`` and analytic ``forecast``. Warnings are counted."""
    from arch import arch_model

    arr = clean_returns(returns, MIN_OBS, "garch_default")
    diag = FitDiagnostics(model="garch_default", n_obs=int(arr.size))
    hs = check_horizons(horizons)
    with captured_fit(diag):
        res = arch_model(arr).fit(disp="off")
        cum = np.cumsum(res.forecast(horizon=max(hs), reindex=False).variance.values[-1])
    return DefaultGarchResult(
        {str(k): float(v) for k, v in res.params.items()},
        int(res.convergence_flag),
        {h: float(math.sqrt(cum[h - 1])) for h in hs},
        diag.warnings,
        diag.warning_messages,
    )
