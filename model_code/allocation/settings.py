"""Allocation settings: the method and its knobs, and the risk limits (the seed's MODEL_RISK_CONTROLS).

Units: weights are fractions of portfolio equity (1.0 = all of it); volatilities are daily standard
deviations of daily log returns unless a name says ``annual`` (daily * sqrt(252)).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal, get_args

Method = Literal["kelly", "barbell", "risk_parity", "hrp", "inverse_vol", "equal_weight"]
METHODS: tuple[str, ...] = get_args(Method)
SafeSleeve = Literal["cash", "low_vol"]
ANNUALIZATION = 252


def _in(obj: object, name: str, low: float, high: float) -> None:
    value = getattr(obj, name)
    if not (math.isfinite(value) and low <= value <= high):
        raise ValueError(f"{name} must be in [{low}, {high}], got {value!r}")


@dataclass(frozen=True)
class RiskLimits:
    """Hard limits, enforced after every method (:mod:`model_code.allocation.limits`).

    ``max_position``: the largest weight of one name outside the safe sleeve. ``max_gross``: the
    cap on the sum of |weight| over all names (cash excluded). ``min_confidence``: a risky position
    needs a BUY signal with at least this confidence (the router's threshold). ``kill_switch_drawdown``:
    a drawdown from the equity peak at or beyond this fraction goes flat until reset.
    ``min_hit_rate``: a rolling hit rate below it is an emergency stop.
    """

    max_position: float = 0.10
    max_gross: float = 1.0
    min_confidence: float = 0.55
    kill_switch_drawdown: float = 0.15
    min_hit_rate: float = 0.45

    def __post_init__(self) -> None:
        _in(self, "max_position", 0.0, 1.0)
        _in(self, "max_gross", 0.0, 1.0)
        _in(self, "min_confidence", 0.0, 1.0)
        _in(self, "kill_switch_drawdown", 0.0, 1.0)
        _in(self, "min_hit_rate", 0.0, 1.0)


@dataclass(frozen=True)
class AllocationSettings:
    """What a method needs besides its inputs.

    ``lookback``: the last sessions of returns the estimators see; ``min_history``: finite returns
    a ticker needs in that window to be sized at all. ``kelly_fraction``: the share of full Kelly,
    strictly below 1 (never full Kelly). ``barbell_*``: the risky share is
    ``barbell_max_risky * regime_confidence * min(1, barbell_vol_target / market_vol)`` (annualized
    vols); the safe sleeve is cash or the ``barbell_safe_count`` lowest-volatility names.
    ``linear_constraints``: skfolio linear constraints (``"AAA <= 0.05"``) passed to the solved
    methods (Kelly, risk parity).
    """

    limits: RiskLimits = field(default_factory=RiskLimits)
    lookback: int = 252
    min_history: int = 20
    kelly_fraction: float = 0.5
    barbell_max_risky: float = 1.0
    barbell_vol_target: float = 0.15
    barbell_safe_sleeve: SafeSleeve = "cash"
    barbell_safe_count: int = 5
    linear_constraints: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not 0.0 < self.kelly_fraction < 1.0:
            raise ValueError(f"kelly_fraction must be in (0, 1): never full Kelly, got {self.kelly_fraction}")
        if self.lookback < 2 or not 2 <= self.min_history <= self.lookback:
            raise ValueError(f"need 2 <= min_history <= lookback, got {self.min_history}, {self.lookback}")
        _in(self, "barbell_max_risky", 0.0, 1.0)
        if not (math.isfinite(self.barbell_vol_target) and self.barbell_vol_target > 0):
            raise ValueError(f"barbell_vol_target must be > 0, got {self.barbell_vol_target}")
        if self.barbell_safe_sleeve not in get_args(SafeSleeve):
            raise ValueError(f"barbell_safe_sleeve must be cash or low_vol, got {self.barbell_safe_sleeve!r}")
        if self.barbell_safe_count < 1:
            raise ValueError(f"barbell_safe_count must be >= 1, got {self.barbell_safe_count}")
