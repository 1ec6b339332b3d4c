"""Market layer: the universe and validated daily bars (quarantined rows go to a table)."""

from pm_assets.market.ohlcv import ohlcv
from pm_assets.market.universe import universe

market_assets = [universe, ohlcv]

__all__ = ["market_assets", "ohlcv", "universe"]
