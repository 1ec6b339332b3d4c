"""Combining forecasters: bounded inverse-MSE weights, a moment-matched mixture, a confidence.

Losses are each model's recent out-of-sample mean squared error of the cumulative log
return (units: log return**2), all measured on the same origins.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from model_code.forecasting.base import Z80, Z95, Forecast


def ensemble_weights(
    losses: Mapping[str, float], *, floor: float = 0.02, cap: float = 0.6
) -> dict[str, float]:
    """Inverse-MSE weights ``w_i ∝ 1 / loss_i``, bounded to ``[floor, cap]`` and summing to 1.

    Bounding: ``w_i = clip(c / loss_i, floor, cap)`` with the scale ``c`` solved (bisection)
    so the weights sum to 1 - inverse-loss proportions among the unbounded models, order
    preserved, clipped models pinned at a bound. If the bounds are infeasible for ``n`` models
    (``n * cap < 1`` or ``n * floor > 1``) they are relaxed to ``1 / n``. Models with a
    non-finite or negative loss get weight 0 and are not bounded; a zero loss is treated as
    ``1e-12`` times the smallest positive loss. Raises ``ValueError`` if no loss is usable.
    """
    if not 0 <= floor <= cap:
        raise ValueError(f"need 0 <= floor <= cap, got floor={floor}, cap={cap}")
    usable = {k: float(v) for k, v in losses.items() if math.isfinite(float(v)) and float(v) >= 0}
    if not usable:
        raise ValueError("no model has a finite, non-negative loss")
    positive = [v for v in usable.values() if v > 0]
    tiny = 1e-12 * (min(positive) if positive else 1.0)
    names = list(usable)
    inv = np.array([1.0 / max(usable[k], tiny) for k in names])
    n = len(names)
    lo, hi = min(floor, 1.0 / n), max(cap, 1.0 / n)
    c_lo, c_hi = 0.0, hi / inv.min()  # sum of clipped weights is n*lo at c_lo, n*hi at c_hi
    for _ in range(200):
        c = 0.5 * (c_lo + c_hi)
        if np.clip(c * inv, lo, hi).sum() < 1.0:
            c_lo = c
        else:
            c_hi = c
    w = np.clip(0.5 * (c_lo + c_hi) * inv, lo, hi)
    w = w / w.sum()
    out = dict.fromkeys(losses, 0.0)
    out.update({k: float(x) for k, x in zip(names, w, strict=True)})
    return out


def combine(forecasts: Sequence[Forecast], weights: Mapping[str, float]) -> Forecast:
    """The ``"ensemble"`` forecast: Gaussian-mixture moment match of the components.

    Each component ``i`` is read as a normal with mean ``yhat_i`` and, separately for each
    interval level, the std implied by its interval width (``(upper - lower) / (2 z)``), so a
    fat-tailed component keeps wider 95 % than 80 % intervals. The mixture with weights
    ``w_i`` (renormalized over the forecasts given) has mean ``m = sum w_i yhat_i`` and, per
    level, variance ``sum w_i (s_i**2 + (yhat_i - m)**2)``; the interval is ``m +/- z * std``.
    ``vol_forecast`` is the same moment match of the components' ``vol_forecast`` (``None``
    if any lacks one). Models missing from ``weights`` get weight 0.
    """
    if not forecasts:
        raise ValueError("combine() needs at least one forecast")
    horizon = forecasts[0].horizon
    if any(f.horizon != horizon for f in forecasts):
        raise ValueError("all forecasts must share one horizon")
    w = np.array([float(weights.get(f.model, 0.0)) for f in forecasts])
    if not (np.isfinite(w).all() and (w >= 0).all() and w.sum() > 0):
        raise ValueError(f"weights must be finite, non-negative and not all zero: {dict(weights)}")
    w = w / w.sum()
    mean_i = np.array([f.yhat for f in forecasts])
    m = float(w @ mean_i)
    spread = w @ (mean_i - m) ** 2

    def mix_std(stds: np.ndarray) -> float:
        return math.sqrt(float(w @ stds**2 + spread))

    s80 = mix_std(np.array([(f.upper_80 - f.lower_80) / (2 * Z80) for f in forecasts]))
    s95 = mix_std(np.array([(f.upper_95 - f.lower_95) / (2 * Z95) for f in forecasts]))
    vols = [f.vol_forecast for f in forecasts]
    vol = None if any(v is None for v in vols) else mix_std(np.array(vols, dtype=np.float64))
    return Forecast(
        "ensemble", horizon, m, m - Z80 * s80, m + Z80 * s80, m - Z95 * s95, m + Z95 * s95, vol_forecast=vol
    )


def confidence(weights: Mapping[str, float], losses: Mapping[str, float]) -> float:
    """Agreement in skill of the weighted models, in (0, 1]: ``1 / (1 + cv)``.

    ``cv`` is the weighted coefficient of variation of the losses, ``sqrt(sum w_i (L_i -
    Lbar)**2) / Lbar`` with ``Lbar = sum w_i L_i`` over models with positive weight and finite
    loss. Equal losses give 1; one model far worse or better than the rest pulls it toward 0.
    It measures how consistent the models' recent accuracy is, not the accuracy itself.
    Returns 0.0 when nothing usable is left.
    """
    pairs = [
        (float(w), float(losses[k]))
        for k, w in weights.items()
        if k in losses and float(w) > 0 and math.isfinite(float(losses[k])) and float(losses[k]) >= 0
    ]
    if not pairs:
        return 0.0
    w = np.array([p[0] for p in pairs])
    loss = np.array([p[1] for p in pairs])
    w = w / w.sum()
    mean = float(w @ loss)
    if mean <= 0:
        return 1.0
    cv = math.sqrt(float(w @ (loss - mean) ** 2)) / mean
    return float(1.0 / (1.0 + cv))
