"""Trading costs, defined once: the signal router, the backtester and the paper ledger import them.

Units: basis points of traded notional, charged on each side of a trade (entry and exit).
``commission_bps`` is the proportional fee, ``slippage_bps`` the price concession against the
reference price. A round trip (in and out) costs ``2 * (commission_bps + slippage_bps)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

BPS = 1e-4


@dataclass(frozen=True)
class TradingCosts:
    """Proportional costs per side, in basis points (defaults 5 + 5 bps)."""

    commission_bps: float = 5.0
    slippage_bps: float = 5.0

    def __post_init__(self) -> None:
        for name in ("commission_bps", "slippage_bps"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")

    @property
    def per_side_bps(self) -> float:
        return self.commission_bps + self.slippage_bps

    @property
    def round_trip_bps(self) -> float:
        """Entering and leaving a position once (bps of notional)."""
        return 2.0 * self.per_side_bps

    @property
    def round_trip_log(self) -> float:
        """The round trip as a log-return drag: ``-log(1 - 2c)`` for per-side fraction ``c``."""
        return -math.log1p(-self.round_trip_bps * BPS)
