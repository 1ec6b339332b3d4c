"""Validation of daily bars: pure functions that split a batch into accepted rows,
quarantined rows (with a reason) and series-level findings."""

from model_code.validation.ohlcv_rules import (
    QUARANTINE_REASONS,
    StoredBars,
    ValidationResult,
    ValidationRules,
    validate_ohlcv,
)
from model_code.validation.staleness import stale_tickers

__all__ = [
    "QUARANTINE_REASONS",
    "StoredBars",
    "ValidationResult",
    "ValidationRules",
    "stale_tickers",
    "validate_ohlcv",
]
