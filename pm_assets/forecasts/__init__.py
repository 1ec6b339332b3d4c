"""Forecasts layer: statistical forecasts per ticker, model and horizon, and their ensemble."""

from pm_assets.forecasts.accuracy import accuracy
from pm_assets.forecasts.predictions import predictions

forecast_assets = [predictions, accuracy]

__all__ = ["accuracy", "forecast_assets", "predictions"]
