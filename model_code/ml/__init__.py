"""ML engine, data and validation layer: panels, leak-free normalization, purged CV, metrics.

``dataset`` joins features to one horizon's label (with its realization date ``label_end``)
and normalizes features per date with fill values learned only in a training window; ``cv``
splits sessions walk-forward with label-end purge and embargo and logs every trial; ``metrics``
scores out-of-sample predictions per date. ``forecasts`` calibrates a model's score to an
h-session log return with split-conformal intervals, and ``lifecycle`` places the production
windows, trains, measures importance and applies the champion rule. No Dagster imports here.
"""

from model_code.ml.cv import Fold, PurgedWalkForward, Trial, TrialLog, purged_train_mask
from model_code.ml.dataset import (
    LABEL,
    LABEL_END,
    CrossSectionalNormalizer,
    Panel,
    build_panel,
    sample_weights,
)
from model_code.ml.metrics import (
    daily_ic,
    daily_rank_ic,
    hit_rate,
    ic_summary,
    quantile_spread,
    quantile_spread_by_date,
)

__all__ = [
    "LABEL",
    "LABEL_END",
    "CrossSectionalNormalizer",
    "Fold",
    "Panel",
    "PurgedWalkForward",
    "Trial",
    "TrialLog",
    "build_panel",
    "daily_ic",
    "daily_rank_ic",
    "hit_rate",
    "ic_summary",
    "purged_train_mask",
    "quantile_spread",
    "quantile_spread_by_date",
    "sample_weights",
]
