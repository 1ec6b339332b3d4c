"""Allocation methods: each sizes a set of tickers from their daily log returns, long only.

Every method returns weights >= 0 that sum to at most 1 (the rest is cash) BEFORE the risk limits
(:mod:`model_code.allocation.limits`), which the caller applies after any method. skfolio does the
estimation and the solving; a solve that raises falls back through skfolio's own chain, previous
weights first, then inverse volatility, and the result names the method used and why.

Units: ``X`` is (sessions, tickers) of daily log returns; ``mu`` is the expected DAILY log return
(a signal's ``expected_return`` over ``horizon`` sessions divided by ``horizon``); covariances are
daily. Cash earns 0. Kelly uses ``mu`` as the drift without the log-to-simple ``sigma^2 / 2`` term:
that term would give every volatile name a positive Kelly weight whatever its signal says.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from skfolio import RiskMeasure
from skfolio.optimization import (
    BaseOptimization,
    EqualWeighted,
    HierarchicalRiskParity,
    InverseVolatility,
    MeanRisk,
    ObjectiveFunction,
    RiskBudgeting,
)
from skfolio.prior import EmpiricalPrior

from model_code.allocation.covariance import ShrunkCovariance
from model_code.allocation.history import daily_vols

PREVIOUS_WEIGHTS = "previous_weights"
INVERSE_VOL = "inverse_vol"
CASH_ONLY = "cash"


@dataclass(frozen=True)
class MethodResult:
    """``weights`` aligned with the tickers the method was given; ``sleeves`` ("risky"/"safe") likewise.
    ``method_used``: the method, or the fallback that produced the weights; ``fallback_reason``:
    why the method itself did not (None when it did)."""

    weights: np.ndarray
    sleeves: tuple[str, ...]
    method_used: str
    fallback_reason: str | None = None
    note: str | None = None  # how the method sized this book (Kelly fraction, barbell risky share)


def equal_weight(X: np.ndarray, tickers: Sequence[str]) -> MethodResult:
    """1/N over ``tickers`` (skfolio ``EqualWeighted``)."""
    return _solved(EqualWeighted(), X, tickers, "equal_weight", None)


def inverse_vol(X: np.ndarray, tickers: Sequence[str]) -> MethodResult:
    """Weights proportional to 1 / sample daily volatility (skfolio ``InverseVolatility``)."""
    return _solved(InverseVolatility(), X, tickers, "inverse_vol", None)


def risk_parity(
    X: np.ndarray,
    tickers: Sequence[str],
    *,
    variances: np.ndarray | None = None,
    linear_constraints: Sequence[str] = (),
    previous_weights: np.ndarray | None = None,
) -> MethodResult:
    """Equal risk contributions ``w_i (S w)_i`` on the shrunk covariance (skfolio ``RiskBudgeting``)."""
    est = RiskBudgeting(
        risk_measure=RiskMeasure.VARIANCE,
        prior_estimator=_prior(variances),
        linear_constraints=list(linear_constraints) or None,
    )
    return _solved(est, X, tickers, "risk_parity", previous_weights)


def hrp(
    X: np.ndarray,
    tickers: Sequence[str],
    *,
    variances: np.ndarray | None = None,
    previous_weights: np.ndarray | None = None,
) -> MethodResult:
    """Hierarchical risk parity on the shrunk covariance (skfolio ``HierarchicalRiskParity``)."""
    est = HierarchicalRiskParity(risk_measure=RiskMeasure.VARIANCE, prior_estimator=_prior(variances))
    return _solved(est, X, tickers, "hrp", previous_weights)


def kelly(
    X: np.ndarray,
    tickers: Sequence[str],
    mu: np.ndarray,
    *,
    fraction: float,
    variances: np.ndarray | None = None,
    linear_constraints: Sequence[str] = (),
    previous_weights: np.ndarray | None = None,
) -> MethodResult:
    """Fractional Kelly, long only: ``max mu'w - w'Sw / (2 fraction)`` over ``w >= 0`` (skfolio
    ``MeanRisk``, utility objective, shrunk covariance ``S``). Unconstrained it is
    ``fraction * S^-1 mu``; the long-only cone is scale invariant, so the weights are exactly
    ``fraction`` times the full-Kelly ones. ``fraction`` in (0, 1]; callers' settings keep it < 1.
    The sum is NOT forced to 1: what Kelly does not invest stays cash (or exceeds 1 until the
    gross cap scales it)."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    m = np.asarray(mu, dtype=float)
    if m.shape != (len(tickers),) or not np.isfinite(m).all():
        raise ValueError("mu must be finite, one per ticker")
    est = MeanRisk(
        objective_function=ObjectiveFunction.MAXIMIZE_UTILITY,
        risk_measure=RiskMeasure.VARIANCE,
        risk_aversion=1.0 / (2.0 * fraction),
        prior_estimator=_prior(variances),
        overwrite_expected_return=lambda w: m @ w,
        budget=None,
        min_weights=0.0,
        max_weights=None,
        linear_constraints=list(linear_constraints) or None,
    )
    if len(tickers) and not (m > 0).any():
        # Nothing has a positive edge: the long-only optimum is all cash, no solve needed.
        return MethodResult(
            np.zeros(len(tickers)), ("risky",) * len(tickers), "kelly", note="no positive edge"
        )
    solved = _solved(est, X, tickers, "kelly", previous_weights, single_asset_shortcut=False)
    return dataclasses.replace(solved, note=f"{fraction:g} x full Kelly")


def barbell(
    X: np.ndarray,
    tickers: Sequence[str],
    risky: np.ndarray,
    *,
    regime_confidence: float | None,
    market_vol: float,
    vol_target: float,
    max_risky: float,
    safe_sleeve: str,
    safe_count: int,
) -> MethodResult:
    """A safe sleeve and a risky sleeve. ``risky`` marks the signal names (inverse-vol weighted
    inside the sleeve); the risky share is ``max_risky * regime_confidence * min(1, vol_target /
    market_vol)`` (annualized vols), 0 when the regime confidence or the market vol is unknown or
    there is no risky name. The rest is cash (``safe_sleeve="cash"``) or the ``safe_count``
    lowest-volatility non-risky names, inverse-vol weighted (``"low_vol"``)."""
    n = len(tickers)
    risky = np.asarray(risky, dtype=bool)
    w = np.zeros(n)
    sleeves = tuple("risky" if r else "safe" for r in risky)
    share = risky_share(regime_confidence, market_vol, vol_target, max_risky) if risky.any() else 0.0
    reasons: list[str] = []
    if share > 0:
        idx = np.flatnonzero(risky)
        sub = inverse_vol(X[:, idx], [tickers[i] for i in idx])
        w[idx] = share * sub.weights
        if sub.fallback_reason:
            reasons.append(sub.fallback_reason)
    if safe_sleeve == "low_vol" and (~risky).any():
        vols = daily_vols(X)
        pool = np.flatnonzero(~risky & np.isfinite(vols))
        idx = pool[np.argsort(vols[pool], kind="stable")][:safe_count]
        if idx.size:
            sub = inverse_vol(X[:, idx], [tickers[i] for i in idx])
            w[idx] = (1.0 - share) * sub.weights
    mv = "unknown" if not np.isfinite(market_vol) else f"{market_vol:.3f}"
    rc = "unknown" if regime_confidence is None else f"{regime_confidence:.3f}"
    note = f"risky share {share:.3f} (regime confidence {rc}, market vol {mv} vs target {vol_target:g})"
    return MethodResult(w, sleeves, "barbell", "; ".join(reasons) or None, note)


def risky_share(
    regime_confidence: float | None, market_vol: float, vol_target: float, max_risky: float
) -> float:
    """``max_risky * regime_confidence * min(1, vol_target / market_vol)`` in [0, max_risky]; 0 when unknown."""
    if regime_confidence is None or not np.isfinite(regime_confidence) or not np.isfinite(market_vol):
        return 0.0
    vol_scale = 1.0 if market_vol <= vol_target else vol_target / market_vol
    return float(np.clip(max_risky * regime_confidence * vol_scale, 0.0, max_risky))


def _prior(variances: np.ndarray | None) -> EmpiricalPrior:
    return EmpiricalPrior(covariance_estimator=ShrunkCovariance(variances=variances))


def _solved(
    est: BaseOptimization,
    X: np.ndarray,
    tickers: Sequence[str],
    name: str,
    previous_weights: np.ndarray | None,
    *,
    single_asset_shortcut: bool = True,
) -> MethodResult:
    n = len(tickers)
    risky = ("risky",) * n
    if n == 0:
        return MethodResult(np.zeros(0), (), name)
    if n == 1 and single_asset_shortcut:
        return MethodResult(np.ones(1), risky, name)  # every long-only, fully invested method agrees
    est.set_params(fallback=[PREVIOUS_WEIGHTS, InverseVolatility()], previous_weights=previous_weights)
    frame = pd.DataFrame(np.asarray(X, dtype=float), columns=list(tickers))
    try:
        est.fit(frame)
        w = np.asarray(est.weights_, dtype=float)
    except Exception as exc:  # the whole chain failed: stay in cash rather than guess
        chain = getattr(est, "fallback_chain_", None) or [(name, str(exc))]
        return MethodResult(np.zeros(n), risky, CASH_ONLY, _describe(name, chain, all_failed=True))
    if not np.isfinite(w).all() or w.shape != (n,):
        return MethodResult(np.zeros(n), risky, CASH_ONLY, f"{name} gave non-finite weights; cash")
    w = np.clip(w, 0.0, None)  # solver round-off can leave -1e-12
    chain = est.fallback_chain_
    if chain is None:
        return MethodResult(w, risky, name)
    used = PREVIOUS_WEIGHTS if est.fallback_ == PREVIOUS_WEIGHTS else INVERSE_VOL
    return MethodResult(w, risky, used, _describe(name, chain, all_failed=False))


def _describe(name: str, chain: list[tuple[str, str]], *, all_failed: bool) -> str:
    labels = [name] + [PREVIOUS_WEIGHTS if s == PREVIOUS_WEIGHTS else INVERSE_VOL for s, _ in chain[1:]]
    failed = [
        f"{label} failed: {outcome.splitlines()[0][:200]}"
        for label, (_, outcome) in zip(labels, chain, strict=True)
        if outcome != "success"
    ]
    tail = "; every fallback failed, cash" if all_failed else f"; used {labels[-1]}"
    return "; ".join(failed) + tail
