"""Forecasts layer: statistical forecasts per ticker, model and horizon, and their ensemble."""

from pm_assets.forecasts.predictions import predictions

forecast_assets = [predictions]

__all__ = ["forecast_assets", "predictions"]
