"""Regime stability: does the strategy earn its Sharpe in every kind of market, or in one?

Regime labels, each known at the close before the day it labels (no look-ahead):

* ``volatility``: the market's trailing 21-day volatility through T-1 in low / mid / high terciles
  whose cut-offs are the **expanding** quantiles of the volatility seen so far (never the full
  sample's);
* ``trend``: the market's price through T-1 above or below its 200-day average;
* ``hmm``: the most likely state under :class:`~model_code.ml.regime.RegimeModel`'s
  forward-filtered probabilities (never hmmlearn's smoothed ``predict``), passed in as labels.

Per regime: the per-period Sharpe with its standard error (Lo 2002, iid: ``sqrt((1 + SR^2 / 2) /
n)``), annualized for display; then the worst regime, the share of regimes with a positive
Sharpe, and Cochran's Q test of equal Sharpe across regimes (chi-square with k - 1 degrees of
freedom on the inverse-variance weighted Sharpes; a small p means performance depends on the
regime). Returns are daily simple returns.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import polars as pl
from numpy.typing import ArrayLike
from scipy import stats

from model_code.backtest.metrics import PERIODS_PER_YEAR

VOL_WINDOW = 21
TREND_WINDOW = 200
MIN_HISTORY = 63  # days of volatility before the expanding terciles are trusted


def volatility_regimes(market_returns: ArrayLike, *, window: int = VOL_WINDOW) -> np.ndarray:
    """``low`` / ``mid`` / ``high`` per day from the trailing volatility through the day before,
    cut at the expanding terciles of the volatilities seen up to then; ``None`` before enough
    history."""
    r = np.asarray(market_returns, dtype=np.float64)
    vol = pl.Series(r).rolling_std(window).shift(1).to_numpy()  # through T-1
    labels = np.full(r.size, None, dtype=object)
    for t in range(r.size):
        past = vol[: t + 1]
        past = past[np.isfinite(past)]
        if past.size < MIN_HISTORY or not np.isfinite(vol[t]):
            continue
        lo, hi = np.quantile(past[:-1], [1 / 3, 2 / 3])  # cut-offs from earlier days only
        labels[t] = "low" if vol[t] <= lo else ("high" if vol[t] > hi else "mid")
    return labels


def trend_regimes(market_prices: ArrayLike, *, window: int = TREND_WINDOW) -> np.ndarray:
    """``up`` / ``down``: the price at T-1 against its ``window``-day average through T-1."""
    p = pl.Series(np.asarray(market_prices, dtype=np.float64))
    ma = p.rolling_mean(window).shift(1).to_numpy()
    prev = p.shift(1).to_numpy()
    out = np.full(p.len(), None, dtype=object)
    ok = np.isfinite(ma) & np.isfinite(prev)
    out[ok] = np.where(prev[ok] > ma[ok], "up", "down")
    return out


def regime_table(returns: ArrayLike, labels: Mapping[str, ArrayLike]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Per (kind, regime): days, Sharpe (per period, annualized) ± s.e.; and per kind: the worst
    regime, the share with positive Sharpe, Cochran's Q and its p-value."""
    r = np.asarray(returns, dtype=np.float64)
    rows, summary = [], []
    for kind, lab in labels.items():
        lab = np.asarray(lab, dtype=object)
        if lab.shape != r.shape:
            raise ValueError(f"{kind}: {lab.size} labels for {r.size} returns")
        stats_k = []
        for regime in sorted({x for x in lab if x is not None}):
            x = r[lab == regime]
            if x.size < 3 or x.std(ddof=1) == 0:
                continue
            sr = float(x.mean() / x.std(ddof=1))
            se = math.sqrt((1 + sr**2 / 2) / x.size)
            stats_k.append((regime, x.size, sr, se))
            rows.append(
                {
                    "kind": kind,
                    "regime": regime,
                    "days": x.size,
                    "sharpe": sr,
                    "sharpe_se": se,
                    "sharpe_annualized": sr * math.sqrt(PERIODS_PER_YEAR),
                }
            )
        if len(stats_k) >= 2:
            w = np.array([1 / s[3] ** 2 for s in stats_k])
            sr = np.array([s[2] for s in stats_k])
            pooled = float(w @ sr / w.sum())
            q = float(w @ (sr - pooled) ** 2)
            p = float(stats.chi2.sf(q, df=len(stats_k) - 1))
        else:
            q, p = math.nan, math.nan
        worst = min(stats_k, key=lambda s: s[2])[0] if stats_k else None
        summary.append(
            {
                "kind": kind,
                "regimes": len(stats_k),
                "worst_regime": worst,
                "share_positive": (sum(s[2] > 0 for s in stats_k) / len(stats_k)) if stats_k else math.nan,
                "cochran_q": q,
                "heterogeneity_p": p,
            }
        )
    table_schema = {
        "kind": pl.String,
        "regime": pl.String,
        "days": pl.Int64,
        "sharpe": pl.Float64,
        "sharpe_se": pl.Float64,
        "sharpe_annualized": pl.Float64,
    }
    summary_schema = {
        "kind": pl.String,
        "regimes": pl.Int64,
        "worst_regime": pl.String,
        "share_positive": pl.Float64,
        "cochran_q": pl.Float64,
        "heterogeneity_p": pl.Float64,
    }
    return pl.DataFrame(rows, schema=table_schema), pl.DataFrame(summary, schema=summary_schema)
