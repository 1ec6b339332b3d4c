"""Rolling-origin evaluation of forecasts: accuracy tables, Diebold–Mariano tests, reports."""

from model_code.evaluation.accuracy import METRIC_COLUMNS, accuracy_table
from model_code.evaluation.diebold_mariano import DmResult, dm_test
from model_code.evaluation.walk_forward import compare_to_random_walk, monthly_origins, run_walk_forward
from model_code.forecasting.losses import attach_realized, realized_losses, targets_long

__all__ = [
    "METRIC_COLUMNS",
    "DmResult",
    "accuracy_table",
    "attach_realized",
    "compare_to_random_walk",
    "dm_test",
    "monthly_origins",
    "realized_losses",
    "run_walk_forward",
    "targets_long",
]
