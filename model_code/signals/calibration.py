"""Confidence that means what it says: P(the forecast's sign is right), calibrated point in time.

A source's confidence at ``as_of`` is learned only from that source's own past calls whose
target closed on its ``target_date`` no later than ``as_of`` (the rule of
:mod:`model_code.forecasting.losses`). Each call has a ``direction`` (+1 up, -1 down) and a
``score``: for a return forecast ``z = |yhat| / sd``, its size in units of its own predicted
standard deviation (``sd`` from the 80 % interval width); for the LLM its stated confidence.
The calibration is a logistic regression of ``hit = direction == sign(actual)`` on the score.
With too little history the confidence is 0.5, which the router reads as "no confident view".
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import numpy as np
import polars as pl
from sklearn.linear_model import LogisticRegression

from model_code.forecasting.base import Z80

MIN_HISTORY = 250  # realized forecasts before a calibration is trusted
NO_VIEW = 0.5


def signal_strength(yhat: pl.Expr, lower_80: pl.Expr, upper_80: pl.Expr) -> pl.Expr:
    """``|yhat| / sd`` with ``sd = (upper_80 - lower_80) / (2 z80)``; NULL where sd is not positive."""
    sd = (upper_80 - lower_80) / (2 * Z80)
    return pl.when(sd > 0).then(yhat.abs() / sd)


@dataclass(frozen=True)
class Calibration:
    """``P(hit | z) = 1 / (1 + exp(-(a + b z)))``, fitted on ``n`` realized forecasts up to ``as_of``."""

    a: float
    b: float
    n: int
    hit_rate: float
    as_of: dt.date

    def confidence(self, z: np.ndarray) -> np.ndarray:
        """Calibrated probability that the direction is right, for scores ``z`` (NaN -> 0.5)."""
        z = np.asarray(z, dtype=np.float64)
        p = 1.0 / (1.0 + np.exp(-(self.a + self.b * z)))
        return np.where(np.isfinite(z), p, NO_VIEW)


def forecast_calls(forecasts: pl.DataFrame) -> pl.DataFrame:
    """Return-forecast rows (``yhat, lower_80, upper_80`` ...) as calls: ``direction`` and ``score``."""
    return forecasts.with_columns(
        direction=pl.col("yhat").sign().cast(pl.Int8),
        score=signal_strength(pl.col("yhat"), pl.col("lower_80"), pl.col("upper_80")),
    )


def fit_calibration(
    calls: pl.DataFrame, as_of: dt.date, *, min_history: int = MIN_HISTORY
) -> Calibration | None:
    """Fit on ``calls`` (``origin, target_date, direction, score, actual``; ``actual`` already NULL
    where the realized date was not the target date) with ``origin < as_of`` and ``target_date <=
    as_of``. ``None`` with fewer than ``min_history`` usable calls (non-zero direction and actual).

    The slope is kept >= 0: a stronger call must not mean less confidence (a negative slope
    fitted on noise would invert the ranking); at slope 0 the confidence is the plain hit rate.
    """
    done = calls.filter(
        (pl.col("origin") < as_of)
        & (pl.col("target_date") <= as_of)
        & pl.col("actual").is_finite()
        & pl.col("score").is_finite()
        & (pl.col("direction") != 0)
        & (pl.col("actual") != 0)
    )
    if done.height < min_history:
        return None
    score = done["score"].to_numpy().astype(np.float64)
    hit = (done["direction"].to_numpy() == np.sign(done["actual"].to_numpy())).astype(np.float64)
    a, b = _logistic(score, hit)
    return Calibration(a=a, b=b, n=done.height, hit_rate=float(hit.mean()), as_of=as_of)


def _logistic(z: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Unpenalized maximum-likelihood logistic regression ``y ~ a + b z`` (scikit-learn); a fitted
    ``b < 0`` is replaced by ``b = 0`` and the intercept of the plain hit rate."""
    mean = float(np.clip(y.mean(), 1e-6, 1 - 1e-6))
    if y.min() == y.max():
        return math.log(mean / (1 - mean)), 0.0
    model = LogisticRegression(C=np.inf, solver="lbfgs", max_iter=200).fit(z[:, None], y)
    b = float(model.coef_[0, 0])
    if b < 0:
        return math.log(mean / (1 - mean)), 0.0
    return float(model.intercept_[0]), b
