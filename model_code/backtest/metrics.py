"""Performance metrics of daily simple returns, and whether they are luck (PSR, DSR, MinTRL).

The probability of backtest overfitting of a parameter sweep is in
:mod:`model_code.backtest.overfitting`.

Every input is a 1-D array of per-period **simple** returns (``0.01`` = +1 %), one per trading
session, in order; annualized figures use ``PERIODS_PER_YEAR = 252``. A NaN or infinite return
is refused (a backtest that produced one is broken, and silently dropping it would hide that).

Pinned convention: the classic Bailey & López de Prado (2012, 2014) one.

* Sharpe ratio ``SR = mean(r) / std(r, ddof=1)``, per period, no risk-free rate (the returns
  are already excess of cash, which earns nothing in our backtests). The annualized Sharpe is
  ``SR * sqrt(252)``; PSR, DSR, MinTRL and the trial Sharpes always use the **per-period** one.
* Skewness ``g3`` and kurtosis ``g4`` are the biased sample moments, as ``scipy.stats.skew`` and
  ``scipy.stats.kurtosis(fisher=False)`` compute them by default: kurtosis is **non-excess**
  (3 for a normal). skfolio's ``skew``/``kurtosis`` compute the same (a test pins it).
* ``PSR(SR*) = Phi((SR - SR*) sqrt(T - 1) / sqrt(1 - g3 SR + (g4 - 1) / 4 SR^2))``
  (skfolio ``probabilistic_sharpe_ratio``).
* Expected maximum Sharpe of ``N`` independent trials whose true Sharpe is zero,
  ``SR0 = sigma [(1 - gamma) Phi^-1(1 - 1/N) + gamma Phi^-1(1 - 1/(N e))]`` with ``gamma`` the
  Euler–Mascheroni constant, ``N`` the number of trial Sharpes given and ``sigma`` their
  standard deviation with ddof=1 (skfolio ``expected_max_sharpe_ratio``).
* ``DSR = PSR(SR0)`` (skfolio ``deflated_sharpe_ratio``).
* ``MinTRL = 1 + (1 - g3 SR + (g4 - 1) / 4 SR^2) (Phi^-1(confidence) / (SR - SR*))^2``
  periods (scipy; skfolio has none).

The fixture of issue 11 (24 daily returns, 10 trial Sharpes) reproduces PSR(0) 0.891281,
PSR(0.1) 0.788794, SR0 0.138031, DSR 0.738355 and MinTRL 41.9069 under exactly these choices;
the test suite holds them to 1e-6.

Undefined values are NaN (a Sharpe without dispersion), unbounded ones ``inf`` (a Sortino or
profit factor with gains and no losses, a MinTRL when ``SR <= SR*``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import polars as pl
from numpy.typing import ArrayLike
from scipy import stats
from skfolio import measures as skm

PERIODS_PER_YEAR = 252
# PSR and its relatives need a variance, a skewness and T - 1 > 0: three points at least.
MIN_PERIODS = 3
# A standard deviation this small against the mean is rounding error of a constant series.
DISPERSION_RTOL = 1e-10

METRIC_COLUMNS: tuple[str, ...] = (
    "strategy",
    "n_periods",
    "total_return",
    "cagr",
    "volatility",
    "sharpe",
    "sharpe_per_period",
    "sortino",
    "max_drawdown",
    "calmar",
    "profit_factor",
    "hit_rate",
    "information_ratio",
    "mean_turnover",
    "skewness",
    "kurtosis",
    "psr",
    "expected_max_sharpe",
    "dsr",
    "min_track_record_length",
    "n_trials",
)


def as_returns(returns: ArrayLike, name: str = "returns", min_periods: int = MIN_PERIODS) -> np.ndarray:
    """``returns`` as a 1-D float64 array, or a ValueError naming what is wrong with it."""
    arr = np.asarray(returns, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of per-period returns, got shape {arr.shape}")
    if arr.size < min_periods:
        raise ValueError(f"{name} is too short: {arr.size} periods, at least {min_periods} needed")
    bad = ~np.isfinite(arr)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{name} has {int(bad.sum())} NaN or infinite values (first at index {first})")
    if (arr <= -1.0).any():
        raise ValueError(f"{name} has a simple return <= -1 (a total loss), which no equity curve survives")
    return arr


def _ratio(mean: float, std: float) -> float:
    """``mean / std``, NaN when ``std`` is zero or rounding error of a constant series."""
    if not std > DISPERSION_RTOL * abs(mean):
        return math.nan
    return mean / std


def equity_curve(returns: ArrayLike) -> np.ndarray:
    """Compounded equity after each period, starting from 1.0 before the first (length T)."""
    return np.cumprod(1.0 + as_returns(returns, min_periods=1))


def drawdowns(returns: ArrayLike) -> np.ndarray:
    """Drawdown after each period as a non-positive fraction of the running peak of equity.

    The initial capital (1.0) is the first peak, so a loss on the first period is a drawdown
    (skfolio ``get_drawdowns(compounded=True)``).
    """
    return np.asarray(skm.get_drawdowns(as_returns(returns, min_periods=1), compounded=True))


def max_drawdown(returns: ArrayLike) -> float:
    """Largest peak-to-trough loss of the compounded equity curve, a positive fraction (0.2 = 20 %)."""
    return float(-drawdowns(returns).min()) + 0.0


def total_return(returns: ArrayLike) -> float:
    """Compounded return over the whole series (0.1 = +10 %)."""
    return float(np.prod(1.0 + as_returns(returns, min_periods=1)) - 1.0)


def cagr(returns: ArrayLike, periods_per_year: int = PERIODS_PER_YEAR) -> float:
    """Compound annual growth rate, ``(prod(1 + r))^(periods_per_year / T) - 1``."""
    r = as_returns(returns, min_periods=1)
    return float(np.prod(1.0 + r) ** (periods_per_year / r.size) - 1.0)


def annualized_volatility(returns: ArrayLike, periods_per_year: int = PERIODS_PER_YEAR) -> float:
    """``std(r, ddof=1) * sqrt(periods_per_year)``, a fraction per year."""
    r = as_returns(returns, min_periods=2)
    return float(skm.standard_deviation(r)) * math.sqrt(periods_per_year)


def sharpe_ratio(returns: ArrayLike) -> float:
    """Per-period Sharpe ``mean / std(ddof=1)``; NaN without dispersion. The one PSR/DSR use."""
    r = as_returns(returns, min_periods=2)
    return _ratio(float(skm.mean(r)), float(skm.standard_deviation(r)))


def annualized_sharpe_ratio(returns: ArrayLike, periods_per_year: int = PERIODS_PER_YEAR) -> float:
    """Per-period Sharpe times ``sqrt(periods_per_year)``."""
    return sharpe_ratio(returns) * math.sqrt(periods_per_year)


def sortino_ratio(returns: ArrayLike, periods_per_year: int = PERIODS_PER_YEAR) -> float:
    """Annualized Sortino: mean over the downside deviation below 0, times ``sqrt(periods_per_year)``.

    Downside deviation ``sqrt(sum(min(r, 0)^2) / (T - 1))`` over all T periods (skfolio
    ``semi_deviation(min_acceptable_return=0)``, ddof 1 like the Sharpe). With no losing period
    it is ``inf`` for a positive mean and NaN for an all-zero series.
    """
    r = as_returns(returns, min_periods=2)
    mu = float(skm.mean(r))
    downside = float(skm.semi_deviation(r, min_acceptable_return=0.0))
    if downside == 0.0:
        return math.inf if mu > 0 else math.nan
    return mu / downside * math.sqrt(periods_per_year)


def calmar_ratio(returns: ArrayLike, periods_per_year: int = PERIODS_PER_YEAR) -> float:
    """CAGR over max drawdown; ``inf`` for growth without drawdown, NaN for neither."""
    growth, mdd = cagr(returns, periods_per_year), max_drawdown(returns)
    if mdd == 0.0:
        return math.inf if growth > 0 else math.nan
    return growth / mdd


def profit_factor(returns: ArrayLike) -> float:
    """Sum of gaining periods' returns over the absolute sum of losing ones.

    ``inf`` with gains and no losses, NaN with neither (an all-zero series).
    """
    r = as_returns(returns, min_periods=1)
    gains, losses = float(r[r > 0].sum()), float(-r[r < 0].sum())
    if losses == 0.0:
        return math.inf if gains > 0 else math.nan
    return gains / losses


def hit_rate(returns: ArrayLike) -> float:
    """Share of periods with a positive return among periods with a non-zero one (flat days do
    not count: a strategy in cash neither hits nor misses); NaN when every period is zero."""
    r = as_returns(returns, min_periods=1)
    active = r != 0.0
    return float((r > 0).sum() / active.sum()) if active.any() else math.nan


def information_ratio(
    returns: ArrayLike, benchmark: ArrayLike, periods_per_year: int = PERIODS_PER_YEAR
) -> float:
    """Annualized information ratio: ``mean(r - b) / std(r - b, ddof=1) * sqrt(periods_per_year)``.

    ``benchmark`` holds the benchmark's per-period simple returns on the same dates (e.g. the
    equal-weight universe). NaN when the active return has no dispersion.
    """
    r = as_returns(returns, min_periods=2)
    b = as_returns(benchmark, name="benchmark", min_periods=2)
    if b.shape != r.shape:
        raise ValueError(f"benchmark has {b.size} periods, returns have {r.size}: they must be aligned")
    active = r - b
    return _ratio(float(active.mean()), float(active.std(ddof=1))) * math.sqrt(periods_per_year)


def mean_turnover(turnover: ArrayLike) -> float:
    """Mean of per-period turnover, in the units given (the backtester's ``sum |w_t - w_t-1|``
    as a fraction of equity per session); turnover must be finite and non-negative."""
    t = np.asarray(turnover, dtype=np.float64)
    if t.ndim != 1 or t.size == 0:
        raise ValueError(f"turnover must be a non-empty 1-D array, got shape {t.shape}")
    if not np.isfinite(t).all():
        raise ValueError(f"turnover has {int((~np.isfinite(t)).sum())} NaN or infinite values")
    if (t < 0).any():
        raise ValueError("turnover has negative values")
    return float(t.mean())


def skewness(returns: ArrayLike) -> float:
    """Biased sample skewness, as ``scipy.stats.skew`` computes it by default."""
    return float(stats.skew(as_returns(returns)))


def kurtosis(returns: ArrayLike) -> float:
    """Biased sample kurtosis, **non-excess** (3 for a normal): ``scipy.stats.kurtosis(fisher=False)``."""
    return float(stats.kurtosis(as_returns(returns), fisher=False))


def probabilistic_sharpe_ratio(returns: ArrayLike, benchmark_sharpe: float = 0.0) -> float:
    """PSR: probability that the true per-period Sharpe exceeds ``benchmark_sharpe`` (per period).

    NaN when the Sharpe is undefined or the variance adjustment is not positive.
    """
    r = as_returns(returns)
    return float(skm.probabilistic_sharpe_ratio(r, benchmark_sharpe_ratio=float(benchmark_sharpe)))


def _as_trials(trial_sharpes: Sequence[float] | ArrayLike) -> np.ndarray:
    trials = np.asarray(trial_sharpes, dtype=np.float64)
    if trials.ndim != 1 or trials.size == 0:
        raise ValueError(f"trial_sharpes must be a non-empty 1-D sequence, got shape {trials.shape}")
    if not np.isfinite(trials).all():
        raise ValueError(f"trial_sharpes has {int((~np.isfinite(trials)).sum())} NaN or infinite values")
    return trials


def expected_max_sharpe(trial_sharpes: Sequence[float] | ArrayLike) -> float:
    """Expected maximum per-period Sharpe of ``N = len(trial_sharpes)`` zero-skill trials.

    Uses the standard deviation of the trial Sharpes with ddof=1 and mean 0 (Bailey & López de
    Prado 2014); one trial gives 0. ``trial_sharpes`` are per-period Sharpes of every
    configuration ever run (``backtest.trials``), the selected one included.
    """
    trials = _as_trials(trial_sharpes)
    std = float(trials.std(ddof=1)) if trials.size > 1 else 0.0
    return float(skm.expected_max_sharpe_ratio(n_trials=trials.size, trial_sharpe_ratio_std=std))


def deflated_sharpe_ratio(returns: ArrayLike, trial_sharpes: Sequence[float] | ArrayLike) -> float:
    """DSR = PSR(expected max Sharpe of the trials): probability that the selected strategy's true
    Sharpe is positive once the search over ``len(trial_sharpes)`` trials is accounted for."""
    r = as_returns(returns)
    return float(skm.deflated_sharpe_ratio(r, _as_trials(trial_sharpes)))


def min_track_record_length(
    returns: ArrayLike, benchmark_sharpe: float = 0.0, confidence: float = 0.95
) -> float:
    """Periods of track record needed for the observed Sharpe to beat ``benchmark_sharpe`` (per
    period) at ``confidence``, given the sample's skewness and kurtosis. ``inf`` when the observed
    Sharpe does not exceed the benchmark, NaN when it is undefined."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence!r}")
    r = as_returns(returns)
    sr = sharpe_ratio(r)
    if math.isnan(sr):
        return math.nan
    if sr <= benchmark_sharpe:
        return math.inf
    g3, g4 = float(stats.skew(r)), float(stats.kurtosis(r, fisher=False))
    z = float(stats.norm.ppf(confidence))
    return 1.0 + (1.0 - g3 * sr + (g4 - 1.0) / 4.0 * sr**2) * (z / (sr - benchmark_sharpe)) ** 2


def metrics_table(
    returns: Mapping[str, ArrayLike],
    benchmark: ArrayLike | None,
    trial_sharpes: Sequence[float] | ArrayLike,
    *,
    turnover: Mapping[str, ArrayLike] | None = None,
    periods_per_year: int = PERIODS_PER_YEAR,
    confidence: float = 0.95,
) -> pl.DataFrame:
    """One row per strategy or baseline, columns ``METRIC_COLUMNS``, for ``backtest.metrics``.

    Args:
        returns: name -> per-period (daily) simple returns; every series must be aligned with
            ``benchmark`` when one is given.
        benchmark: the benchmark's per-period simple returns (the equal-weight universe), or None
            (``information_ratio`` is then null).
        trial_sharpes: per-period Sharpes of every configuration ever run (``backtest.trials``),
            the N and dispersion of DSR; empty gives null ``expected_max_sharpe`` and ``dsr``.
        turnover: name -> per-period turnover (fraction of equity); a missing name gives null.
        periods_per_year: annualization of ``cagr``, ``volatility``, ``sharpe``, ``sortino``,
            ``calmar`` and ``information_ratio``.
        confidence: the level of ``min_track_record_length`` (against SR* = 0).

    Units: ``total_return``, ``cagr``, ``volatility``, ``max_drawdown`` (positive) and ``hit_rate``
    are fractions (0.1 = 10 %), annualized where named so; ``sharpe``, ``sortino`` and
    ``information_ratio`` are annualized; ``sharpe_per_period``, ``expected_max_sharpe`` are per
    period (daily); ``psr`` (against SR* = 0) and ``dsr`` are probabilities;
    ``min_track_record_length`` counts periods; ``kurtosis`` is non-excess. Null means not given,
    NaN undefined, inf unbounded (see the module docstring).
    """
    trials = np.asarray(trial_sharpes, dtype=np.float64)
    has_trials = trials.size > 0
    if has_trials:
        sr0 = expected_max_sharpe(trials)
    bench = None if benchmark is None else as_returns(benchmark, name="benchmark")
    rows = []
    for name, series in returns.items():
        r = as_returns(series, name=f"returns[{name!r}]")
        if bench is not None and bench.shape != r.shape:
            raise ValueError(
                f"returns[{name!r}] has {r.size} periods, the benchmark {bench.size}: they must be aligned"
            )
        tv = None if turnover is None or name not in turnover else turnover[name]
        rows.append(
            {
                "strategy": name,
                "n_periods": r.size,
                "total_return": total_return(r),
                "cagr": cagr(r, periods_per_year),
                "volatility": annualized_volatility(r, periods_per_year),
                "sharpe": annualized_sharpe_ratio(r, periods_per_year),
                "sharpe_per_period": sharpe_ratio(r),
                "sortino": sortino_ratio(r, periods_per_year),
                "max_drawdown": max_drawdown(r),
                "calmar": calmar_ratio(r, periods_per_year),
                "profit_factor": profit_factor(r),
                "hit_rate": hit_rate(r),
                "information_ratio": None if bench is None else information_ratio(r, bench, periods_per_year),
                "mean_turnover": None if tv is None else mean_turnover(tv),
                "skewness": skewness(r),
                "kurtosis": kurtosis(r),
                "psr": probabilistic_sharpe_ratio(r, 0.0),
                "expected_max_sharpe": sr0 if has_trials else None,
                "dsr": deflated_sharpe_ratio(r, trials) if has_trials else None,
                "min_track_record_length": min_track_record_length(r, 0.0, confidence),
                "n_trials": int(trials.size),
            }
        )
    schema = {c: pl.Float64 for c in METRIC_COLUMNS} | {
        "strategy": pl.String,
        "n_periods": pl.Int64,
        "n_trials": pl.Int64,
    }
    return pl.DataFrame(rows, schema=schema)
