"""Features layer: point-in-time features and forward targets, in separate tables."""

from pm_assets.features.daily import daily_features
from pm_assets.features.targets import targets

feature_assets = [daily_features, targets]

__all__ = ["daily_features", "feature_assets", "targets"]
