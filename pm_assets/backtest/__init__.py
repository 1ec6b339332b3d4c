"""Backtest layer: the stored allocations replayed through the execution model, beside baselines."""

from pm_assets.backtest.run import backtest_run

backtest_assets = [backtest_run]

__all__ = ["backtest_assets", "backtest_run"]
