"""Reading any saved model back: the one dispatch from an artifact's ``meta.json`` to its class.

* ``wrapper == "return_forecaster"``: :class:`~model_code.ml.forecasts.ReturnForecaster` (a
  learner plus its normalizer and return calibration), what ``ml/model`` registers;
* ``family`` ``regime_hmm`` / ``regime_gmm``: :class:`~model_code.ml.regime.RegimeModel`;
* any other family: the bare learner (:func:`~model_code.ml.models.load_learner`).

It sits above every model module and below :mod:`model_code.ml.registry`, its caller, so the
model modules never import each other to load one another.
"""

from __future__ import annotations

from pathlib import Path

from model_code.ml.artifacts import read_meta
from model_code.ml.forecasts import WRAPPER, ReturnForecaster
from model_code.ml.models import Learner, load_learner
from model_code.ml.regime import RegimeModel

REGIME_PREFIX = "regime_"


def load_model(path: str | Path) -> ReturnForecaster | RegimeModel | Learner:
    """Load any artifact folder written by a learner's ``save``, by ``RegimeModel.save`` or by
    ``ReturnForecaster.save``; predictions are those of the saved model."""
    meta = read_meta(path)
    if meta.get("wrapper") == WRAPPER:
        return ReturnForecaster.load(path)
    if str(meta.get("family", "")).startswith(REGIME_PREFIX):
        return RegimeModel.load(path)
    return load_learner(path)
