"""The point-in-time state an allocation reads besides signals and returns.

Everything here is known at the close of ``as_of`` and supplied by the caller: the allocation
never computes the future. ``regime_confidence`` must come from FORWARD-FILTERED state
probabilities (P(state_T | data up to T), :meth:`model_code.ml.regime.RegimeModel.state_probabilities`),
never smoothed ones (hmmlearn's ``predict``/``predict_proba`` use later data).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class AllocationState:
    """``drawdown``: current equity drawdown from its peak, a fraction in [0, 1].
    ``kill_switch_engaged``: the latch; once the drawdown reaches the limit it stays flat until the
    caller resets it (see :func:`model_code.allocation.limits.kill_switch_engaged`).
    ``rolling_hit_rate``: the strategy's recent hit rate in [0, 1]; None (or NaN) while too few
    trades are scored, which never stops trading.
    ``regime_confidence``: probability in [0, 1] of the favourable (calm) regime; None: unknown,
    and the barbell then keeps everything in the safe sleeve.
    ``market_vol``: annualized market volatility; None: the barbell estimates it from the equal-weight
    mean of the names it sizes over their last 21 sessions (pass the index's own when you have it).
    ``garch_variances``: per-ticker DAILY variance forecasts of log returns, put on the covariance
    diagonal where given (correlations kept).
    """

    drawdown: float = 0.0
    kill_switch_engaged: bool = False
    rolling_hit_rate: float | None = None
    regime_confidence: float | None = None
    market_vol: float | None = None
    garch_variances: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not (math.isfinite(self.drawdown) and 0.0 <= self.drawdown <= 1.0):
            raise ValueError(f"drawdown must be a fraction in [0, 1], got {self.drawdown!r}")
        hr = self.rolling_hit_rate
        if hr is not None and math.isfinite(hr) and not 0.0 <= hr <= 1.0:
            raise ValueError(f"rolling_hit_rate must be in [0, 1], got {hr!r}")
        rc = self.regime_confidence
        if rc is not None and not (math.isfinite(rc) and 0.0 <= rc <= 1.0):
            raise ValueError(f"regime_confidence must be in [0, 1], got {rc!r}")
        mv = self.market_vol
        if mv is not None and not (math.isfinite(mv) and mv >= 0.0):
            raise ValueError(f"market_vol must be >= 0, got {mv!r}")
