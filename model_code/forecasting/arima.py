"""ARIMA forecasters of daily log returns: statsforecast ``AutoARIMA`` and statsmodels ``SARIMAX``.

Cumulative forecasts. With ``x_t`` the daily log return, the ``h``-session return is
``S_h = x_{T+1} + ... + x_{T+h}``. Its mean is the sum of the 1..h step point forecasts. Its
forecast error is ``sum_k e_{T+k|T}`` where ``e_{T+k|T} = sum_{j<k} psi_j eps_{T+k-j}`` (the
MA(inf) representation of the fitted model, differencing included). Collecting the
coefficient of each future shock gives

    Var(S_h) = sigma2 * sum_{n=0}^{h-1} Psi_n**2,   Psi_n = psi_0 + ... + psi_n,

which includes every covariance between step errors (summing the per-step variances is
only right for white noise). Parameter uncertainty is ignored, as in the libraries' own
intervals. Intervals are Gaussian.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from model_code.forecasting.base import (
    HORIZONS,
    FitDiagnostics,
    FitFailed,
    FitState,
    Forecast,
    captured_fit,
    check_horizons,
    clean_returns,
    gaussian_forecast,
)

MIN_OBS = 60
_ICS = ("aic", "aicc", "bic")
_STATE_SPACE = ("Z", "a", "P", "T", "V", "h")  # what predict_arima reads from model["model"]


def kalman_update(
    y: np.ndarray, z: np.ndarray, a: np.ndarray, p: np.ndarray, t: np.ndarray, v: np.ndarray, h: float
) -> tuple[np.ndarray, np.ndarray]:
    """The filtered state ``(a, P)`` after the observations ``y``, from the filtered ``(a, P)`` of
    the last one before them, with fixed system matrices (R's ``ARIMA_Like`` step; ``P`` in units
    of ``sigma2``). An observation the state already predicts exactly (``F = 0``) leaves it as is."""
    a, p = np.array(a, dtype=np.float64), np.array(p, dtype=np.float64)
    for obs in np.asarray(y, dtype=np.float64):
        a, p = t @ a, t @ p @ t.T + v
        pz = p @ z
        f = float(z @ pz) + h
        if f > 1e-300:
            a = a + pz * ((obs - float(z @ a)) / f)
            p = p - np.outer(pz, pz) / f
    return a, p


def psi_weights(ar: np.ndarray, ma: np.ndarray, n: int) -> np.ndarray:
    """``psi_0..psi_{n-1}`` of ``x_t = sum_i ar[i] x_{t-1-i} + eps_t + sum_j ma[j] eps_{t-1-j}``."""
    ar = np.asarray(ar, dtype=np.float64)
    ma = np.asarray(ma, dtype=np.float64)
    psi = np.zeros(n)
    for j in range(n):
        value = 1.0 if j == 0 else (ma[j - 1] if j - 1 < ma.size else 0.0)
        for i in range(min(j, ar.size)):
            value += ar[i] * psi[j - 1 - i]
        psi[j] = value
    return psi


def cumulative_variance(ar: np.ndarray, ma: np.ndarray, sigma2: float, horizons: Sequence[int]) -> np.ndarray:
    """Forecast-error variance of the cumulative return over each horizon (units of ``sigma2``)."""
    hmax = max(horizons)
    big_psi = np.cumsum(psi_weights(ar, ma, hmax))
    acc = sigma2 * np.cumsum(big_psi**2)
    return np.array([acc[h - 1] for h in horizons])


def _ar_with_differencing(ar: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """AR coefficients of ``phi(B) * delta(B)`` (both given as ``1 - sum c_i B^i``)."""
    poly = np.convolve(np.r_[1.0, -np.asarray(ar, float)], np.r_[1.0, -np.asarray(delta, float)])
    return -poly[1:]


def _fit_problem(model: dict) -> str | None:
    """Why a statsforecast fit must be discarded, or ``None``.

    BFGS code 0 is converged. Code 2 ("precision loss": the line search ran out of floating-
    point resolution, routine on flat return likelihoods) is accepted only when the solution
    looks like a maximum (positive finite inverse-Hessian variances). Any other code (1 =
    iteration limit) is non-convergence; so are a non-stationary AR part and a bad variance.
    """
    code = int(model.get("code", 0))
    if code not in (0, 2):
        return f"optimizer did not converge (scipy BFGS code {code})"
    sigma2 = float(model["sigma2"])
    if not (math.isfinite(sigma2) and sigma2 > 0):
        return f"non-positive innovation variance {sigma2}"
    coef = np.array(list(model["coef"].values()), dtype=np.float64)
    if not np.isfinite(coef).all():
        return "non-finite coefficients"
    phi = np.asarray(model["model"]["phi"], dtype=np.float64)
    if phi.size and np.any(np.abs(np.roots(np.r_[-phi[::-1], 1.0])) <= 1.0):
        return "AR part is not stationary"
    if code == 2 and coef.size:
        var = np.diag(np.atleast_2d(model.get("var_coef") if model.get("var_coef") is not None else np.nan))
        if not (np.isfinite(var).all() and (var > 0).all()):
            return "optimizer stopped (BFGS code 2) away from a maximum: coefficient variances invalid"
    return None


def invertible_ma(ma: np.ndarray, sigma2: float) -> tuple[np.ndarray, float]:
    """The invertible (fundamental) MA with the same autocovariances: each root ``r`` of
    ``1 + sum ma_j z^j`` inside the unit circle becomes ``1 / conj(r)`` and ``sigma2`` is divided
    by ``|r|**2``. Psi weights need this form (ML may stop on a non-invertible MA, whose
    likelihood is identical)."""
    ma = np.asarray(ma, dtype=np.float64)
    if not ma.size or not np.any(ma):
        return ma, sigma2
    roots = np.roots(np.r_[ma[::-1], 1.0])
    inside = np.abs(roots) < 1.0
    if not inside.any():
        return ma, sigma2
    sigma2 = sigma2 / float(np.prod(np.abs(roots[inside]) ** 2))
    roots = np.where(inside, 1.0 / np.conj(roots), roots)
    poly = np.poly(1.0 / roots)  # descending coefs of prod(x - 1/r) = ascending of prod(1 - z/r)
    return np.real(poly[1:]).astype(np.float64), sigma2


class Arima:
    """Bounded automatic ARIMA (statsforecast ``AutoARIMA``) on daily log returns.

    Order search: stepwise over ``p, q <= 3`` starting from white noise, no seasonality unless
    ``season_length > 1``, no drift (a trend in returns is not a model we want), mean allowed.
    ``d`` is 0 by default: log returns are already the first difference of log prices, and a
    KPSS-chosen ``d = 1`` on returns is over-differencing (``max_d=1`` re-enables the KPSS test,
    with the guard below). ``approximation=True`` (R's ``auto.arima`` default for series longer
    than 150): candidates are ranked by their conditional-sum-of-squares likelihood and only the
    chosen order is refitted by exact ML, which is the fit that is checked for convergence and
    used; ranking by exact ML (``approximation=False``) costs ~3x the time and, on the shared
    data, picks the same order on 38 of 39 sampled tickers. ``ic`` selects (``"aic"``,
    ``"aicc"``, ``"bic"``); the default ``"bic"`` is the parsimonious choice for
    near-unpredictable returns (``aicc`` often picks spurious cancelling ARMA(2,2) on white
    noise). Over-differencing guard (``max_d=1``): KPSS rejects on ~5 % of i.i.d. windows; a
    ``d = 1`` fit whose MA has a root within 5 % of the unit circle is refitted with ``d = 0``.
    """

    name = "arima"

    def __init__(
        self,
        ic: str = "bic",
        max_p: int = 3,
        max_q: int = 3,
        max_d: int = 0,
        season_length: int = 1,
        d_alpha: float = 0.05,
        approximation: bool = True,
    ) -> None:
        if ic not in _ICS:
            raise ValueError(f"ic must be one of {_ICS}, got {ic!r}")
        self.ic, self.max_p, self.max_q, self.max_d = ic, max_p, max_q, min(max_d, 1)
        self.season_length, self.d_alpha, self.approximation = season_length, d_alpha, approximation
        self.model_: dict | None = None
        self.ar_: np.ndarray = np.zeros(0)
        self.ma_: np.ndarray = np.zeros(0)
        self.sigma2_: float = math.nan

    def _search(self, arr: np.ndarray, d: int | None) -> dict:
        from statsforecast.models import AutoARIMA

        auto = AutoARIMA(
            d=0 if self.max_d == 0 else d,
            start_p=0,
            start_q=0,
            max_p=self.max_p,
            max_q=self.max_q,
            max_d=self.max_d,
            ic=self.ic,
            seasonal=self.season_length > 1,
            season_length=self.season_length,
            allowdrift=False,
            approximation=self.approximation,
            test_kwargs={"alpha": self.d_alpha},
        )
        return auto.fit(arr).model_

    def fit(self, returns: np.ndarray) -> FitDiagnostics:
        """Select and fit the order on ``returns``; raises :class:`FitFailed` if it did not converge."""
        arr = clean_returns(returns, MIN_OBS, self.name)
        diag = FitDiagnostics(model=self.name, n_obs=int(arr.size))
        self.model_ = None
        with captured_fit(diag):
            try:
                model = self._search(arr, None)
                theta = np.asarray(model["model"]["theta"], dtype=np.float64)
                if (
                    model["arma"][5] > 0
                    and np.any(theta)
                    and np.abs(np.roots(np.r_[theta[::-1], 1.0])).min() < 1.05
                ):
                    model = self._search(arr, 0)
                    diag.notes = "over-differenced (MA root near 1 with d=1): refitted with d=0"
            except Exception as exc:  # library raises bare Exception / ValueError / LinAlgError
                raise FitFailed(f"{self.name}: fit raised {type(exc).__name__}: {exc}") from exc
        problem = _fit_problem(model)
        if problem is not None:
            diag.converged = False
            raise FitFailed(f"{self.name}: {problem}")
        sigma2 = float(model["sigma2"])
        ss = model["model"]
        self.ar_ = _ar_with_differencing(ss["phi"], ss["delta"])
        self.ma_, self.sigma2_ = invertible_ma(ss["theta"], sigma2)
        self.model_ = model
        p, q, sp, sq, period, d, sd = model["arma"]
        diag.params = {
            "order": f"({p},{d},{q})",
            "seasonal_order": f"({sp},{sd},{sq})[{period}]",
            "sigma2": sigma2,
            "ic": self.ic,
            "ic_value": float(model[self.ic]),
        }
        diag.params.update({k: float(v) for k, v in model["coef"].items()})
        return diag

    def state(self) -> FitState:
        """Coefficients, innovation variance and the state-space form with its filtered state at
        the fit's last return (all small: JSON params, no arrays)."""
        if self.model_ is None:
            raise FitFailed(f"{self.name}: state() called before a successful fit()")
        m = self.model_
        ss = {k: np.asarray(m["model"][k], dtype=np.float64).tolist() for k in _STATE_SPACE}
        return FitState(
            self.name,
            int(m["nobs"]) if "nobs" in m else 0,
            {
                "coef": {k: float(v) for k, v in m["coef"].items()},
                "sigma2": float(m["sigma2"]),
                "arma": [int(x) for x in m["arma"]],
                "state_space": ss,
                "ar": self.ar_.tolist(),
                "ma": self.ma_.tolist(),
                "psi_sigma2": float(self.sigma2_),
            },
        )

    def load_state(self, state: FitState) -> None:
        """Restore a stored fit (the model dict ``predict_arima`` needs, and the psi inputs)."""
        p = state.params
        ss = p["state_space"]
        self.model_ = {
            "coef": dict(p["coef"]),
            "sigma2": float(p["sigma2"]),
            "arma": tuple(p["arma"]),
            "model": {k: np.asarray(ss[k], dtype=np.float64) for k in _STATE_SPACE},
        }
        self.model_["model"]["h"] = float(ss["h"])
        self.ar_, self.ma_ = np.asarray(p["ar"], dtype=np.float64), np.asarray(p["ma"], dtype=np.float64)
        self.sigma2_ = float(p["psi_sigma2"])

    def update(self, returns: np.ndarray, new: int) -> None:
        """Kalman-filter the ``new`` returns after the fit through the fixed-coefficient state
        space (the intercept, if any, removed first): the forecasts then start from them."""
        if self.model_ is None:
            raise FitFailed(f"{self.name}: update() called before load_state()")
        if new <= 0:
            return
        y = np.asarray(returns, dtype=np.float64)[-new:] - float(self.model_["coef"].get("intercept", 0.0))
        ss = self.model_["model"]
        a, p = kalman_update(y, ss["Z"], ss["a"], ss["P"], ss["T"], ss["V"], float(ss["h"]))
        self.model_ = {**self.model_, "model": {**ss, "a": a, "P": p}}

    @property
    def order(self) -> tuple[int, int, int]:
        """The selected ``(p, d, q)``."""
        if self.model_ is None:
            raise FitFailed(f"{self.name}: not fitted")
        p, q, _, _, _, d, _ = self.model_["arma"]
        return int(p), int(d), int(q)

    def forecast(self, horizons: Sequence[int] = HORIZONS) -> list[Forecast]:
        """Cumulative log-return forecasts with psi-weight variances (see module docstring)."""
        from statsforecast.arima import predict_arima

        if self.model_ is None:
            raise FitFailed(f"{self.name}: forecast() called before a successful fit()")
        hs = check_horizons(horizons)
        steps = np.asarray(predict_arima(self.model_, max(hs), se_fit=False), dtype=np.float64)
        means = np.cumsum(steps)
        var = cumulative_variance(self.ar_, self.ma_, self.sigma2_, hs)
        return [
            gaussian_forecast(self.name, h, means[h - 1], math.sqrt(v), vol=math.sqrt(v))
            for h, v in zip(hs, var, strict=True)
        ]


class Sarimax:
    """statsmodels ``SARIMAX`` (regression with ARMA errors) for the exogenous-regressor case.

    ``fit(returns, exog)`` with ``exog`` shaped ``(n, k)``; ``forecast(horizons, exog_future)``
    needs the future regressors for ``max(horizons)`` sessions. Regressors are treated as known,
    so the cumulative variance is that of the ARMA errors (psi weights, module docstring).
    """

    name = "sarimax"

    def __init__(self, order: tuple[int, int, int] = (1, 0, 0), trend: str = "c") -> None:
        self.order, self.trend = order, trend
        self.result_ = None
        self.k_exog_ = self.forecast_warnings_ = 0

    def fit(self, returns: np.ndarray, exog: np.ndarray | None = None) -> FitDiagnostics:
        """Fit by ML; ``mle_retvals['converged']`` False raises :class:`FitFailed`."""
        from statsmodels.tsa.statespace.sarimax import SARIMAX

        arr = clean_returns(returns, MIN_OBS, self.name)
        x = None if exog is None else np.asarray(exog, dtype=np.float64)
        if x is not None and x.shape[0] != arr.size:
            raise ValueError(f"{self.name}: exog has {x.shape[0]} rows for {arr.size} returns")
        x = None if x is None else x.reshape(arr.size, -1)
        if x is not None and not np.isfinite(x).all():
            raise FitFailed(f"{self.name}: exog contains NaN or infinite values")
        diag = FitDiagnostics(model=self.name, n_obs=int(arr.size))
        self.result_ = None
        with captured_fit(diag):
            try:
                res = SARIMAX(arr, exog=x, order=self.order, trend=self.trend).fit(disp=False)
            except Exception as exc:
                raise FitFailed(f"{self.name}: fit raised {type(exc).__name__}: {exc}") from exc
        if not bool(res.mle_retvals.get("converged", False)):
            diag.converged = False
            raise FitFailed(f"{self.name}: optimizer did not converge")
        self.result_, self.k_exog_ = res, 0 if x is None else x.shape[1]
        diag.params = {"order": str(self.order), "aic": float(res.aic)}
        diag.params.update({str(k): float(v) for k, v in zip(res.model.param_names, res.params, strict=True)})
        return diag

    def forecast(
        self, horizons: Sequence[int] = HORIZONS, exog_future: np.ndarray | None = None
    ) -> list[Forecast]:
        """Cumulative forecasts; ``exog_future`` rows are sessions ``T+1..T+max(horizons)``."""
        if self.result_ is None:
            raise FitFailed(f"{self.name}: forecast() called before a successful fit()")
        hs = check_horizons(horizons)
        hmax = max(hs)
        x = None
        if self.k_exog_:
            if exog_future is None:
                raise ValueError(f"{self.name}: fitted with exog, so exog_future is required")
            x = np.asarray(exog_future, dtype=np.float64).reshape(-1, self.k_exog_)[:hmax]
            if x.shape[0] < hmax:
                raise ValueError(f"{self.name}: exog_future has {x.shape[0]} rows, needs {hmax}")
        res = self.result_
        caught = FitDiagnostics(model=self.name, n_obs=0)
        with captured_fit(caught):
            steps = np.asarray(res.get_forecast(hmax, exog=x).predicted_mean, dtype=np.float64)
        self.forecast_warnings_ = caught.warnings
        means = np.cumsum(steps)
        ar = np.asarray(res.arparams, dtype=np.float64)
        for _ in range(self.order[1]):
            ar = _ar_with_differencing(ar, np.r_[1.0])
        sigma2 = float(res.params[list(res.model.param_names).index("sigma2")])
        var = cumulative_variance(ar, res.maparams, sigma2, hs)
        return [
            gaussian_forecast(self.name, h, means[h - 1], math.sqrt(v), vol=math.sqrt(v))
            for h, v in zip(hs, var, strict=True)
        ]


@dataclass
class GridResult:
    """Outcome of :func:`library_default_sarimax_grid` (a benchmark reference)."""

    order: tuple[int, int, int]
    aic: float
    mean_by_horizon: dict[int, float]
    n_fits: int
    warnings: int
    warning_messages: list[str] = field(default_factory=list)


def library_default_sarimax_grid(returns: np.ndarray, horizons: Sequence[int] = HORIZONS) -> GridResult:
    """The "library-default way": statsmodels ``SARIMAX(p,0,q)`` for ``p, q`` in 0..2, default
    settings, best AIC, then ``get_forecast``. Warnings are captured and counted, never printed."""
    from statsmodels.tsa.statespace.sarimax import SARIMAX

    arr = clean_returns(returns, MIN_OBS, "sarimax_grid")
    diag = FitDiagnostics(model="sarimax_grid", n_obs=int(arr.size))
    best, best_order, n = None, (0, 0, 0), 0
    with captured_fit(diag):
        for p, q in itertools.product(range(3), range(3)):
            try:
                res = SARIMAX(arr, order=(p, 0, q)).fit(disp=False)
            except Exception:  # a failed candidate is simply skipped, as a grid search would
                continue
            n += 1
            if best is None or res.aic < best.aic:
                best, best_order = res, (p, 0, q)
        if best is None:
            raise FitFailed("sarimax_grid: every candidate failed")
        steps = np.asarray(best.get_forecast(max(horizons)).predicted_mean, dtype=np.float64)
    cum = np.cumsum(steps)
    return GridResult(
        best_order,
        float(best.aic),
        {int(h): float(cum[h - 1]) for h in horizons},
        n,
        diag.warnings,
        diag.warning_messages,
    )
