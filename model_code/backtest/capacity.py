"""Capacity: how much money the strategy can run before trading costs eat its edge.

Cost of trading ``Q`` dollars of a ticker on day ``t`` (a fraction of ``Q``)::

    c(Q) = half_spread + k * sigma_{t,i} * sqrt(Q / ADV_{t,i})

(the square-root impact law; ``k = 1``, sensitivity at 0.5; ``sigma`` the ticker's daily return
volatility and ``ADV`` its average daily dollar volume, both known at the decision). At assets
under management ``A`` the strategy trades ``Q = A |dw_{t,i}|`` (``dw`` the weight change), so
the day's cost as a fraction of ``A`` is ``C0_t + C1_t sqrt(A)`` with

    C0_t = half_spread * sum_i |dw_{t,i}|,   C1_t = k * sum_i |dw_{t,i}|^1.5 sigma_{t,i} / sqrt(ADV_{t,i}).

With ``g`` the mean gross daily return and ``s`` its daily standard deviation, the mean net
return is exactly ``g - C0 - C1 sqrt(A)`` (means over days), so

* the edge vanishes at ``A_edge = ((g - C0) / C1)^2``;
* the net Sharpe ``(g - C0 - C1 sqrt(A)) / s`` (costs taken as a drag on the mean, the return
  volatility held at ``s``) halves from its small-AUM value at ``A_half = A_edge / 4``;
* the participation cap (default 10 % of ADV) binds from ``A_cap = min cap * ADV / |dw|`` over
  the trades, the AUM at which the first trade would exceed it.

Capacity is the smaller of ``A_half`` and ``A_cap``. Units: dollars; returns and costs are
fractions per day; ``half_spread`` a fraction (5 bps = 0.0005).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from model_code.execution import ExecutionConfig, impact_rates


@dataclass(frozen=True)
class Capacity:
    """Dollar AUM levels (``inf`` when costs never bind) and the inputs they came from."""

    edge_vanishes: float
    sharpe_halves: float
    participation_binds: float
    capacity: float
    gross_mean: float
    fixed_cost: float  # C0, mean per day
    impact_coefficient: float  # C1, mean per day per sqrt(dollar)


def _arrays(dw: ArrayLike, adv: ArrayLike, sigma: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    dw, adv, sigma = (np.asarray(x, dtype=np.float64) for x in (dw, adv, sigma))
    if not dw.shape == adv.shape == sigma.shape or dw.ndim != 2:
        raise ValueError(
            f"weight changes, ADV and sigma must be date x ticker arrays of one shape, got {dw.shape}, "
            f"{adv.shape}, {sigma.shape}"
        )
    traded = np.abs(np.nan_to_num(dw))
    bad = (traded > 0) & ~((adv > 0) & np.isfinite(adv) & (sigma >= 0) & np.isfinite(sigma))
    if bad.any():
        t, i = (int(x[0]) for x in np.nonzero(bad))
        raise ValueError(f"a trade at [{t}, {i}] has no positive ADV or finite sigma to price it")
    return traded, np.where(traded > 0, adv, 1.0), np.where(traded > 0, sigma, 0.0)


def daily_costs(
    aum: float, dw: ArrayLike, adv: ArrayLike, sigma: ArrayLike, *, half_spread: float, k: float = 1.0
) -> np.ndarray:
    """Each day's trading cost as a fraction of ``aum``, trade by trade: the execution model's
    own square-root impact (:func:`model_code.execution.impact_rates`, in dollar units) plus the
    half-spread. The closed form of :func:`capacity` is checked against this."""
    traded, adv_, sigma_ = _arrays(dw, adv, sigma)
    q = aum * traded  # dollars traded per ticker and day
    rate = impact_rates(adv_, sigma_, ExecutionConfig(impact_k=k))
    impact = 0.0 if rate is None else rate * np.sqrt(q) * q
    return (half_spread * q + impact).sum(axis=1) / aum if aum > 0 else half_spread * traded.sum(axis=1)


def capacity(
    gross_returns: ArrayLike,
    dw: ArrayLike,
    adv: ArrayLike,
    sigma: ArrayLike,
    *,
    half_spread: float = 0.0005,
    k: float = 1.0,
    participation_cap: float = 0.10,
) -> Capacity:
    """The closed-form AUM levels of the module docstring for a backtest's trades."""
    g = np.asarray(gross_returns, dtype=np.float64)
    traded, adv_, sigma_ = _arrays(dw, adv, sigma)
    if g.shape != (traded.shape[0],):
        raise ValueError(f"gross_returns must have one value per date ({traded.shape[0]}), got {g.shape}")
    gross = float(g.mean())
    c0 = float((half_spread * traded.sum(axis=1)).mean())
    c1 = float((k * (traded**1.5 * sigma_ / np.sqrt(adv_)).sum(axis=1)).mean())
    net0 = gross - c0
    if net0 <= 0:
        edge = half = 0.0
    elif c1 <= 0:
        edge = half = math.inf
    else:
        edge = (net0 / c1) ** 2
        half = edge / 4.0
    trading = traded > 0
    cap = float((participation_cap * adv_[trading] / traded[trading]).min()) if trading.any() else math.inf
    return Capacity(
        edge_vanishes=edge,
        sharpe_halves=half,
        participation_binds=cap,
        capacity=min(half, cap),
        gross_mean=gross,
        fixed_cost=c0,
        impact_coefficient=c1,
    )
