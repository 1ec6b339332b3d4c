"""Diebold–Mariano test of equal predictive accuracy, with the HLN small-sample correction.

Given two aligned loss series (e.g. squared forecast errors of two models on the same origins),
the loss differential is ``d_t = loss_a_t - loss_b_t``. Under the null ``E[d] = 0``. Forecasts
``h`` steps ahead have errors that are MA(h-1) under optimality, so the long-run variance of
``d`` is the rectangular-kernel HAC estimate with ``h - 1`` lags (Diebold & Mariano 1995)::

    gamma_k = (1/n) sum_{t>k} (d_t - dbar)(d_{t-k} - dbar)
    lrv     = gamma_0 + 2 sum_{k=1}^{h-1} gamma_k
    DM      = dbar / sqrt(lrv / n)

Harvey, Leybourne & Newbold (1997) correct the size in small samples::

    HLN = DM * sqrt((n + 1 - 2h + h(h-1)/n) / n),   compared with Student-t(n - 1), two-sided.

A negative statistic means model ``a`` has the lower loss. ``h`` counts *steps of the loss
series* (e.g. origins), not sessions, when the series is sampled less often than daily.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

Kernel = Literal["rectangular", "bartlett"]


@dataclass(frozen=True)
class DmResult:
    """HLN-corrected DM statistic, two-sided p-value, pairs used and mean loss differential."""

    stat: float
    p_value: float
    n: int
    mean_diff: float


def long_run_variance(d: np.ndarray, lags: int, kernel: Kernel = "rectangular") -> float:
    """HAC long-run variance of ``d`` (1/n autocovariances) with ``lags`` lags.

    ``rectangular`` gives every lag weight 1 (DM 1995); ``bartlett`` weights lag ``k`` by
    ``1 - k / (lags + 1)`` (Newey–West, always non-negative).
    """
    n = d.size
    dc = d - d.mean()
    lags = max(0, min(lags, n - 1))
    total = float(dc @ dc) / n
    for k in range(1, lags + 1):
        w = 1.0 if kernel == "rectangular" else 1.0 - k / (lags + 1)
        total += 2.0 * w * float(dc[k:] @ dc[:-k]) / n
    return total


def dm_test(
    loss_a: ArrayLike, loss_b: ArrayLike, horizon: int = 1, *, kernel: Kernel = "rectangular"
) -> DmResult:
    """Diebold–Mariano test (HLN-corrected) that ``loss_a`` and ``loss_b`` have equal mean.

    Args:
        loss_a, loss_b: aligned per-period losses (same length); pairs where either is NaN or
            infinite are dropped.
        horizon: forecast horizon ``h >= 1`` in steps of the series; ``h - 1`` HAC lags.
        kernel: ``rectangular`` (DM 1995). If the rectangular estimate is not positive (it can
            be negative in small samples) the Bartlett (Newey–West) estimate is used instead.

    Degenerate cases return ``stat = nan`` and ``p_value = 1.0`` (no evidence either way):
    fewer than 3 usable pairs, a zero (or numerically zero) long-run variance — including a
    constant differential, where the test is undefined — or a non-positive HLN factor
    (``n`` too small for ``h``).
    """
    if horizon < 1 or int(horizon) != horizon:
        raise ValueError(f"horizon must be a positive integer, got {horizon!r}")
    a = np.asarray(loss_a, dtype=np.float64).ravel()
    b = np.asarray(loss_b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"loss series differ in length: {a.size} vs {b.size}")
    ok = np.isfinite(a) & np.isfinite(b)
    d = a[ok] - b[ok]
    n = int(d.size)
    mean = float(d.mean()) if n else math.nan
    h = int(horizon)
    if n < 3:
        return DmResult(math.nan, 1.0, n, mean)
    lrv = long_run_variance(d, h - 1, kernel)
    if lrv <= 0 and kernel == "rectangular":
        lrv = long_run_variance(d, h - 1, "bartlett")
    scale = float(np.mean(d * d))
    factor = (n + 1 - 2 * h + h * (h - 1) / n) / n
    if not lrv > 1e-12 * scale or factor <= 0:
        return DmResult(math.nan, 1.0, n, mean)
    stat = mean / math.sqrt(lrv / n) * math.sqrt(factor)
    p = 2.0 * float(stats.t.sf(abs(stat), df=n - 1))
    return DmResult(float(stat), min(1.0, p), n, mean)
