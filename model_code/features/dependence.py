"""Serial-dependence features: Lo-MacKinlay variance ratios and a rolling Hurst exponent.

Both come from one estimator, the bias-corrected variance of overlapping q-day log returns
over a trailing window of ``n`` daily log returns (Lo & MacKinlay 1988, eq. for
sigma_c^2(q))::

    mu        = mean(r[t-n+1 .. t])
    S_q[j]    = lp[j] - lp[j-q]                       for j = t-n+q .. t  (n-q+1 sums)
    var_q(t)  = sum_j (S_q[j] - q*mu)^2 / ((n-q+1) * (1 - q/n))

``var_1`` is the ordinary sample variance of daily returns; under iid returns ``var_q`` is
unbiased for ``q * var_1``. Every sum is a rolling sum over the ticker's rows, so the whole
panel is evaluated as polars window expressions (no per-row or per-ticker Python) and the
value at T uses only rows <= T.

* Variance ratio ``VR(q) = var_q / (q * var_1)``: 1 for a random walk, > 1 for trending
  (positively autocorrelated) returns, < 1 for mean reversion. Dimensionless.
* Hurst exponent (aggregated-variance / variance-time method): for a self-similar process
  ``var_q ~ q^(2H)``, so ``H`` is half the least-squares slope of ``ln var_q`` on ``ln q`` for
  ``q`` in ``HURST_SCALES``. 0.5 for a random walk, > 0.5 persistent, < 0.5 anti-persistent.
  On 100 iid returns the estimate averages about 0.48 (the log of a noisy variance is biased
  down, more so at large q); it is a relative signal, not an unbiased estimate of H.
"""

from __future__ import annotations

import math

import polars as pl

from model_code.features._panel import BY

HURST_WINDOW = 100
HURST_SCALES: tuple[int, ...] = (1, 2, 4, 8, 16)
VR_WINDOW = 126
VR_LAGS: tuple[int, ...] = (2, 5, 10)


def q_sum_columns(lags: set[int]) -> list[pl.Expr]:
    """Overlapping q-day log returns ``_s{q} = lp[t] - lp[t-q]`` (per ticker) and their squares."""
    exprs: list[pl.Expr] = []
    for q in sorted(lags):
        s = pl.col("_r") if q == 1 else pl.col("_lp") - pl.col("_lp").shift(q).over(BY)
        exprs += [s.alias(f"_s{q}"), (s * s).alias(f"_s{q}sq")]
    return exprs


def rolling_sum_columns(pairs: set[tuple[int, int]]) -> list[pl.Expr]:
    """For each (q, n): rolling sums of ``_s{q}`` and ``_s{q}sq`` over n-q+1 rows, and mean r."""
    exprs: list[pl.Expr] = []
    for n in sorted({n for _, n in pairs}):
        exprs.append(pl.col("_r").rolling_mean(n).over(BY).alias(f"_mu{n}"))
    for q, n in sorted(pairs):
        k = n - q + 1
        exprs += [
            pl.col(f"_s{q}").rolling_sum(k).over(BY).alias(f"_sum{q}_{n}"),
            pl.col(f"_s{q}sq").rolling_sum(k).over(BY).alias(f"_sq{q}_{n}"),
        ]
    return exprs


def overlapping_variance(q: int, n: int) -> pl.Expr:
    """Bias-corrected variance of q-day log returns over the trailing n returns (needs the
    columns of :func:`q_sum_columns` and :func:`rolling_sum_columns`); NULL where <= 0."""
    k = n - q + 1
    mu, s, sq = pl.col(f"_mu{n}"), pl.col(f"_sum{q}_{n}"), pl.col(f"_sq{q}_{n}")
    ss = sq - 2.0 * q * mu * s + k * (q * mu) ** 2
    var = ss / (k * (1.0 - q / n))
    return pl.when(var > 0).then(var)


def variance_ratio(q: int, n: int = VR_WINDOW) -> pl.Expr:
    """Lo-MacKinlay ``VR(q)`` over the trailing ``n`` daily log returns (dimensionless)."""
    return overlapping_variance(q, n) / (q * overlapping_variance(1, n))


def hurst(n: int = HURST_WINDOW, scales: tuple[int, ...] = HURST_SCALES) -> pl.Expr:
    """Aggregated-variance Hurst exponent over the trailing ``n`` daily log returns."""
    x = [math.log(q) for q in scales]
    xbar = sum(x) / len(x)
    sxx = sum((xi - xbar) ** 2 for xi in x)
    slope = pl.sum_horizontal(
        [((xi - xbar) / sxx) * overlapping_variance(q, n).log() for xi, q in zip(x, scales, strict=True)]
    )
    # sum_horizontal skips NULLs; keep the estimate only when every scale is defined.
    all_defined = pl.all_horizontal([overlapping_variance(q, n).is_not_null() for q in scales])
    return pl.when(all_defined).then(0.5 * slope)


def dependence_pairs() -> set[tuple[int, int]]:
    """Every (q, n) the Hurst and VR features need."""
    pairs = {(q, HURST_WINDOW) for q in HURST_SCALES}
    return pairs | {(q, VR_WINDOW) for q in (1, *VR_LAGS)}
