"""The run config of a refit run: the one shape the decay sensor, tests and the jobs agree on.

Statistical refits run ``refit_job``, which materializes ``forecasts/fits`` (step
``forecasts__fits``) with ``models``: ``{model: [tickers]}``, exactly the pairs to refit.
ML refits run ``ml_training_job`` (step ``ml__model``) for one registry family and the
decayed horizons.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from model_code.ml.lifecycle import MODEL_NAMES

REFIT_JOB = "refit_job"
REFIT_STEP = "forecasts__fits"
ML_TRAINING_JOB = "ml_training_job"
ML_TRAINING_STEP = "ml__model"
# forecasts.ml_predictions model name -> the registry family ml/model trains.
ML_FAMILIES: dict[str, str] = {name: family for family, name in MODEL_NAMES.items()}


def refit_run_config(models: Mapping[str, Iterable[str]]) -> dict:
    """``{"ops": {"forecasts__fits": {"config": {"models": {model: [tickers]}}}}}``, sorted."""
    listed = {m: sorted(set(tickers)) for m, tickers in sorted(models.items()) if tickers}
    return {"ops": {REFIT_STEP: {"config": {"models": listed}}}}


def ml_training_run_config(model: str, horizons: Iterable[int]) -> dict:
    """Train ``model``'s family (``lgbm`` or its registry name) for ``horizons`` only."""
    family = ML_FAMILIES.get(model, model)
    return {
        "ops": {
            ML_TRAINING_STEP: {"config": {"family": family, "horizons": sorted({int(h) for h in horizons})}}
        }
    }
