"""Vectorized backtests of daily target weights and the metrics that judge them."""
