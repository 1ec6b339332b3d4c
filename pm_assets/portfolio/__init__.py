"""Portfolio layer: target weights under hard risk limits."""

from pm_assets.portfolio.allocations import allocations

portfolio_assets = [allocations]

__all__ = ["allocations", "portfolio_assets"]
