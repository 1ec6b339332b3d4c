"""Sources of daily OHLCV bars behind one interface (:class:`OhlcvSource`)."""

from model_code.market_data.sources.base import (
    OhlcvSource,
    SourceBatch,
    SourceConfigError,
    SourceError,
    SourceFileError,
    SourceUnavailable,
    TickerNotFound,
)

__all__ = [
    "OhlcvSource",
    "SourceBatch",
    "SourceConfigError",
    "SourceError",
    "SourceFileError",
    "SourceUnavailable",
    "TickerNotFound",
]
