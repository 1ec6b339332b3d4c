"""Allocation: signals and a returns window -> target weights under hard risk limits.

:func:`~model_code.allocation.allocate.allocate` is the entry point (rows of
``portfolio.allocations``); :mod:`.methods` holds fractional Kelly, barbell, risk parity, HRP and
the inverse-volatility and 1/N baselines; :mod:`.limits` the limits every method passes through.
Returns are DAILY LOG returns throughout.
"""

from model_code.allocation.allocate import ALLOCATION_SCHEMA, CASH, allocate
from model_code.allocation.settings import METHODS, AllocationSettings, RiskLimits
from model_code.allocation.state import AllocationState

__all__ = [
    "ALLOCATION_SCHEMA",
    "CASH",
    "METHODS",
    "AllocationSettings",
    "AllocationState",
    "RiskLimits",
    "allocate",
]
