"""Forecasts layer: statistical forecasts per ticker, model and horizon, and their ensemble."""

from pm_assets.forecasts.accuracy import accuracy
from pm_assets.forecasts.fits import fits
from pm_assets.forecasts.predictions import predictions

forecast_assets = [fits, predictions, accuracy]

__all__ = ["accuracy", "fits", "forecast_assets", "predictions"]
