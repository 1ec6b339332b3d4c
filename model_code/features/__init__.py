"""Daily features and forward-looking targets, kept in separate modules and frames.

``daily`` builds point-in-time features (data dated <= T); ``targets`` builds forward returns
and labels (data dated > T). They share no output frame so a target cannot leak into a
feature set by a careless join. No Dagster imports here.
"""

from model_code.features.daily import FEATURE_COLUMNS, build_daily_features
from model_code.features.targets import build_targets, target_columns, targets_resolved_in

__all__ = [
    "FEATURE_COLUMNS",
    "build_daily_features",
    "build_targets",
    "target_columns",
    "targets_resolved_in",
]
