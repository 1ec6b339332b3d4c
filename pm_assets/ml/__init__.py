"""ML layer: the weekly-trained return forecasters and their nightly predictions."""

from pm_assets.ml.model import ml_model
from pm_assets.ml.predictions import ml_predictions

ml_assets = [ml_model, ml_predictions]

__all__ = ["ml_assets", "ml_model", "ml_predictions"]
