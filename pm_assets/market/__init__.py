"""Market layer: the universe, validated daily bars, and quarantined rows."""

from pm_assets.market.ohlcv import ohlcv
from pm_assets.market.universe import universe

market_assets = [universe, ohlcv]

__all__ = ["market_assets", "ohlcv", "universe"]
