"""The same forecasting work done the library-default way: the references `benchmarks.forecasting` times.

* ARIMA: statsmodels ``SARIMAX(p, 0, q)``, ``p, q <= 2``, default settings, best AIC.
* GARCH, GJR, EGARCH: the *same specification* as ours (constant mean, Student-t errors, percent
  returns) fitted cold by ``arch_model(...).fit()`` with every fit setting at arch's default,
  then arch's default forecast (analytic; EGARCH has no analytic multi-step variance, so
  simulation). Ours differs only in passing arch's linear constraints with exact Jacobians.
* SAMoSSA: the same model with the SSA step done by the textbook full SVD of the trajectory matrix.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from model_code.forecasting import samossa, ssa
from model_code.forecasting.base import FitDiagnostics, captured_fit, clean_returns
from model_code.forecasting.batch import ModelFactory
from model_code.forecasting.changepoints import cusum_changepoints
from model_code.forecasting.garch import MIN_OBS, SCALE, VARIANTS

Timed = Callable[[np.ndarray, Sequence[int]], object]


def arch_same_fit(variant: str) -> Timed:
    """Cold ``arch_model(100 * returns, mean="Constant", dist="t", <variant>)`` fit at arch's
    default settings (its own starting-value search, SLSQP, default tolerance) + forecast."""
    spec = VARIANTS[variant]

    def run(returns: np.ndarray, horizons: Sequence[int]) -> FitDiagnostics:
        from arch import arch_model

        arr = clean_returns(returns, MIN_OBS, f"{variant}_arch")
        diag = FitDiagnostics(model=f"{variant}_arch", n_obs=int(arr.size))
        hmax = max(horizons)
        with captured_fit(diag):
            res = arch_model(arr * SCALE, mean="Constant", dist="t", rescale=False, **spec).fit(disp="off")
            method = "simulation" if spec["vol"] == "EGARCH" and hmax > 1 else "analytic"
            np.cumsum(res.forecast(horizon=hmax, method=method, reindex=False).variance.values[-1])
        diag.converged = int(res.convergence_flag) == 0
        return diag

    return run


def samossa_full_svd(returns: np.ndarray, horizons: Sequence[int]) -> np.ndarray:
    """SAMoSSA's fit + forecast with the SSA step done by ``full_svd_ssa_reference``; change
    points, window and AR residual model exactly as in :class:`~model_code.forecasting.samossa.Samossa`."""
    m = samossa.Samossa()
    r = clean_returns(returns, m.min_obs, "samossa_full_svd")
    cps = cusum_changepoints(r, m.cp_threshold, m.cp_min_segment)
    last = cps[-1] if cps else -1
    start = last if cps and m.min_refit_obs <= r.size - last <= m.recent_changepoint else 0
    seg = r[start:]
    window = max(2, min(m.window, seg.size // 2))
    path = np.cumsum(seg)
    res = ssa.full_svd_ssa_reference(path - path[-1], window, m.energy)
    signal = ssa.cumulative_signal(res, horizons)
    u = seg[1:] - np.diff(res.reconstruction)
    phi, sigma2 = samossa.fit_ar(u, m.max_ar_order)
    tail = u[u.size - phi.size :] if phi.size else np.zeros(0)
    mean, _ = samossa.ar_cumulative_forecast(phi[None, :], np.array([sigma2]), tail[None, :], horizons)
    return signal + mean[0]


def ssa_core(full_svd: bool) -> Timed:
    """SSA of the anchored log-price path (window 60, 90 % energy) + recurrent signal forecast."""

    def run(returns: np.ndarray, horizons: Sequence[int]) -> np.ndarray:
        path = np.cumsum(returns)
        window = min(60, path.size // 2)
        if full_svd:
            res = ssa.full_svd_ssa_reference(path - path[-1], window, 0.9)
            return ssa.cumulative_signal(res, horizons)
        return ssa.ssa_return_forecast(returns, horizons, window, 0.9)[0]

    return run


def ours(factory: ModelFactory) -> Timed:
    """Fit + forecast with one of our models."""

    def run(returns: np.ndarray, horizons: Sequence[int]) -> object:
        model = factory()
        model.fit(returns)
        return model.forecast(horizons)

    return run


def comparisons(models: dict[str, ModelFactory]) -> list[tuple[str, Timed, Timed | None, str]]:
    """``(row, ours, library_default or None, what the library-default way is)`` per timed row."""
    from model_code.forecasting.arima import library_default_sarimax_grid

    refs: dict[str, tuple[Timed, str]] = {
        "arima": (library_default_sarimax_grid, "statsmodels SARIMAX(p,0,q) p,q<=2 AIC grid"),
        "garch": (arch_same_fit("garch"), "arch, same spec (t errors), cold default fit"),
        "gjr": (arch_same_fit("gjr"), "arch, same spec (t errors), cold default fit"),
        "egarch": (arch_same_fit("egarch"), "arch, same spec (t errors), cold, sim forecast"),
        "samossa": (samossa_full_svd, "same model, full np.linalg.svd SSA"),
    }
    rows = []
    for name, factory in models.items():
        ref, what = refs.get(name, (None, "none (no library fit; counted at our time)"))
        rows.append((name, ours(factory), ref, what))
    rows.append(("ssa*", ssa_core(False), ssa_core(True), "eigh-SSA vs full-SVD SSA"))
    return rows
