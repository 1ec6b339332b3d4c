"""The shrunk covariance every solved method sees: Ledoit-Wolf, GARCH variances on the diagonal.

Units: daily log returns in, daily (co)variances out. Where a GARCH variance is given for a ticker
its forecast replaces the sample-based variance and the Ledoit-Wolf correlations are kept, so the
matrix stays positive semi-definite (skfolio projects to the nearest PD matrix if rounding breaks it).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from skfolio.moments import BaseCovariance, LedoitWolf


class ShrunkCovariance(BaseCovariance):
    """skfolio covariance estimator: Ledoit-Wolf, then ``variances`` (daily, NaN = keep) on the diagonal."""

    def __init__(
        self,
        variances: np.ndarray | None = None,
        nearest: bool = True,
        higham: bool = False,
        higham_max_iteration: int = 100,
    ) -> None:
        super().__init__(nearest=nearest, higham=higham, higham_max_iteration=higham_max_iteration)
        self.variances = variances

    def fit(self, X: Any, y: None = None, **fit_params: Any) -> ShrunkCovariance:
        shrunk = LedoitWolf().fit(X)
        self.n_features_in_ = shrunk.n_features_in_
        if hasattr(shrunk, "feature_names_in_"):
            self.feature_names_in_ = shrunk.feature_names_in_
        self._set_covariance(with_diagonal(np.asarray(shrunk.covariance_, dtype=float), self.variances))
        return self


def with_diagonal(cov: np.ndarray, variances: np.ndarray | None) -> np.ndarray:
    """``cov`` with its diagonal replaced by the finite, positive ``variances``, correlations kept."""
    if variances is None:
        return cov
    v = np.asarray(variances, dtype=float)
    if v.shape != (cov.shape[0],):
        raise ValueError(f"variances has shape {v.shape}, expected ({cov.shape[0]},)")
    sd = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    new_sd = np.where(np.isfinite(v) & (v > 0), np.sqrt(np.where(v > 0, v, 1.0)), sd)
    with np.errstate(divide="ignore", invalid="ignore"):
        corr = np.where(np.outer(sd, sd) > 0, cov / np.outer(sd, sd), 0.0)
    np.fill_diagonal(corr, 1.0)
    return corr * np.outer(new_sd, new_sd)
