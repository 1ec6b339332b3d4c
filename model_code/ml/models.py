"""Thin, typed wrappers around the learners, all with one interface.

Every model has ``fit(X, y, *, sample_weight=None, eval_set=None) -> self``, ``predict(X)``,
``params`` (JSON-serializable hyperparameters), ``family`` and ``save(path)`` / ``load(path)``.
``X`` is a float array (rows x features, NaN = missing), ``y`` the target (a forward log return
or z-score for regressors, class labels such as sign or -1/0/1 significant moves for classifiers).

An artifact is a folder: ``meta.json`` (family, params, format; :mod:`model_code.ml.artifacts`)
plus the payload, LightGBM's native text model (``model.txt``) or a joblib pickle
(``model.joblib``) for sklearn models. :func:`load_learner` reads one of these learners back by
its family; :func:`model_code.ml.loading.load_model` reads any artifact (learner, regime model
or return forecaster).
"""

from __future__ import annotations

import inspect
import os
from pathlib import Path
from typing import Any, ClassVar, Protocol, Self, runtime_checkable

import joblib
import lightgbm as lgb
import numpy as np
import sklearn
from sklearn.linear_model import BayesianRidge

from model_code.ml.artifacts import read_meta, write_meta

EvalSet = tuple[np.ndarray, np.ndarray]

# Defaults sized for ~250k rows x ~15 features (sklearn-API names; native aliases in comments).
LGBM_DEFAULTS: dict[str, Any] = {
    "learning_rate": 0.05,
    "num_leaves": 31,
    "min_child_samples": 200,  # min_data_in_leaf
    "colsample_bytree": 0.8,  # feature_fraction
    "subsample": 0.8,  # bagging_fraction
    "subsample_freq": 1,  # bagging_freq
    "reg_lambda": 1.0,  # lambda_l2
    "n_estimators": 500,  # upper bound; early stopping picks fewer when eval_set is given
}
BAYES_RIDGE_DEFAULTS: dict[str, Any] = {
    "max_iter": 300,
    "tol": 1e-3,
    **dict.fromkeys(("alpha_1", "alpha_2", "lambda_1", "lambda_2"), 1e-6),  # gamma priors
}
_BAYES_STATE = ("model", "x_mean", "x_scale", "y_mean", "y_scale")
_HAS_EVAL_X = "eval_X" in inspect.signature(lgb.LGBMModel.fit).parameters
_LGBM_FIXED: dict[str, Any] = {"deterministic": True, "force_row_wise": True, "verbose": -1}


@runtime_checkable
class Model(Protocol):
    """What the registry and the training assets rely on."""

    family: str

    @property
    def params(self) -> dict[str, Any]: ...

    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        *,
        sample_weight: np.ndarray | None = None,
        eval_set: EvalSet | None = None,
    ) -> Self: ...

    def predict(self, X: np.ndarray) -> np.ndarray: ...

    def save(self, path: str | Path) -> Path: ...


def _as_x(X: np.ndarray) -> np.ndarray:
    arr = np.asarray(X, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"X must be 2-D (rows x features), got shape {arr.shape}")
    return arr


class _LgbmBase:
    """Shared LightGBM plumbing: deterministic params, early stopping, native-text artifacts."""

    family: ClassVar[str]
    _estimator: ClassVar[type[lgb.LGBMModel]]

    def __init__(
        self,
        *,
        seed: int = 0,
        n_jobs: int | None = None,
        early_stopping_rounds: int = 50,
        **overrides: Any,
    ) -> None:
        self._params: dict[str, Any] = {
            **LGBM_DEFAULTS,
            **overrides,
            "random_state": int(seed),
            "n_jobs": int(n_jobs or os.cpu_count() or 1),
            **_LGBM_FIXED,
        }
        self.early_stopping_rounds = int(early_stopping_rounds)
        self.booster: lgb.Booster | None = None
        self.best_iteration: int | None = None
        self.n_features: int | None = None

    @property
    def params(self) -> dict[str, Any]:
        """LightGBM hyperparameters (sklearn-API names) plus ``early_stopping_rounds``."""
        return {**self._params, "early_stopping_rounds": self.early_stopping_rounds}

    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        *,
        sample_weight: np.ndarray | None = None,
        eval_set: EvalSet | None = None,
    ) -> Self:
        """Fit; with ``eval_set=(X_val, y_val)`` stop early on its loss (L2 or log loss)."""
        y, eval_set = self._encode(np.asarray(y), eval_set)
        est = self._estimator(**self._params)
        kwargs: dict[str, Any] = {}
        if eval_set is not None:
            xv, yv = _as_x(eval_set[0]), np.asarray(eval_set[1])
            # LightGBM >= 4.7 takes eval_X/eval_y and deprecates eval_set.
            kwargs.update({"eval_X": xv, "eval_y": yv} if _HAS_EVAL_X else {"eval_set": [(xv, yv)]})
            kwargs["callbacks"] = [lgb.early_stopping(self.early_stopping_rounds, verbose=False)]
        x = _as_x(X)
        est.fit(x, y, sample_weight=sample_weight, **kwargs)
        self.booster = est.booster_
        self.best_iteration = int(est.best_iteration_) if est.best_iteration_ else None
        self.n_features = x.shape[1]
        return self

    def _encode(self, y: np.ndarray, eval_set: EvalSet | None) -> tuple[np.ndarray, EvalSet | None]:
        """Hook: map labels before fitting (identity for regression)."""
        return y, eval_set

    def _raw(self, X: np.ndarray) -> np.ndarray:
        if self.booster is None:
            raise RuntimeError(f"{self.family} model is not fitted")
        return np.asarray(self.booster.predict(_as_x(X), num_iteration=self.best_iteration))

    def _meta(self) -> dict[str, Any]:
        return {
            "family": self.family,
            "params": self.params,
            "best_iteration": self.best_iteration,
            "n_features": self.n_features,
            "lightgbm_version": lgb.__version__,
        }

    def save(self, path: str | Path) -> Path:
        """Write the artifact folder: LightGBM native text ``model.txt`` + ``meta.json``."""
        if self.booster is None:
            raise RuntimeError(f"{self.family} model is not fitted; nothing to save")
        path = Path(path)
        write_meta(path, self._meta())
        self.booster.save_model(str(path / "model.txt"), num_iteration=self.best_iteration)
        return path

    @classmethod
    def load(cls, path: str | Path) -> Self:
        """Read an artifact written by :meth:`save`; predictions are bit-identical."""
        meta = read_meta(path, cls.family)
        params = dict(meta["params"])
        params.pop("n_jobs", None)  # the loading machine's cores
        for key in _LGBM_FIXED:
            params.pop(key, None)
        obj = cls(
            seed=params.pop("random_state"),
            early_stopping_rounds=params.pop("early_stopping_rounds"),
            **params,
        )
        obj.booster = lgb.Booster(model_file=str(Path(path) / "model.txt"))
        obj.best_iteration = meta["best_iteration"]
        obj.n_features = meta["n_features"]
        obj._restore(meta)
        return obj

    def _restore(self, meta: dict[str, Any]) -> None:
        """Hook for subclass state kept in ``meta.json``."""


class LgbmRegressor(_LgbmBase):
    """Gradient-boosted trees for a continuous target (e.g. ``fwd_ret_h`` or ``fwd_ret_h_z``)."""

    family = "lgbm_regressor"
    _estimator = lgb.LGBMRegressor

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predicted target, in the target's units, shape (rows,)."""
        return self._raw(X)


class LgbmClassifier(_LgbmBase):
    """Gradient-boosted trees for a class label: direction (0/1, -1/1) or significant move -1/0/1."""

    family = "lgbm_classifier"
    _estimator = lgb.LGBMClassifier

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.classes_: np.ndarray | None = None

    def _encode(self, y: np.ndarray, eval_set: EvalSet | None) -> tuple[np.ndarray, EvalSet | None]:
        """Labels to codes 0..k-1 (LightGBM 4.7 does not encode ``eval_y`` itself)."""
        classes, codes = np.unique(y, return_inverse=True)
        if eval_set is not None:
            yv = np.asarray(eval_set[1])
            unseen = np.setdiff1d(yv, classes)
            if unseen.size:
                raise ValueError(f"eval_set has labels {unseen.tolist()} absent from training labels")
            eval_set = (eval_set[0], np.searchsorted(classes, yv))
        self.classes_ = classes
        return codes, eval_set

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities, shape (rows, classes), columns in the order of ``classes_``."""
        raw = self._raw(X)
        return np.column_stack([1.0 - raw, raw]) if raw.ndim == 1 else raw

    def predict(self, X: np.ndarray) -> np.ndarray:
        """The most probable class label per row."""
        assert self.classes_ is not None
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    def predict_expected(self, X: np.ndarray) -> np.ndarray:
        """Probability-weighted mean label (e.g. P(up) - P(down) for -1/0/1): a ranking score."""
        assert self.classes_ is not None
        return self.predict_proba(X) @ self.classes_.astype(np.float64)

    def _meta(self) -> dict[str, Any]:
        assert self.classes_ is not None
        return {**super()._meta(), "classes": self.classes_.tolist()}

    def _restore(self, meta: dict[str, Any]) -> None:
        self.classes_ = np.asarray(meta["classes"])


class BayesianRidgeModel:
    """Bayesian linear regression on standardized features, with a predictive std.

    Features are standardized with the training mean/std and NaN is imputed with the training
    mean (0 after scaling); the target is standardized too (sample-weighted), so the priors do
    not depend on its units. ``predict_std`` is the predictive standard deviation (noise plus
    coefficient uncertainty) in the target's units. ``eval_set`` is accepted and ignored.
    """

    family = "bayesian_ridge"

    def __init__(self, **params: Any) -> None:
        """``params``: BayesianRidge hyperparameters overriding :data:`BAYES_RIDGE_DEFAULTS`."""
        self._params: dict[str, Any] = {**BAYES_RIDGE_DEFAULTS, **params}
        self.model: BayesianRidge | None = None
        self.x_mean = self.x_scale = np.empty(0)
        self.y_mean, self.y_scale = 0.0, 1.0

    @property
    def params(self) -> dict[str, Any]:
        return dict(self._params)

    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        *,
        sample_weight: np.ndarray | None = None,
        eval_set: EvalSet | None = None,
    ) -> Self:
        x = _as_x(X)
        yv = np.asarray(y, dtype=np.float64)
        self.x_mean = np.nan_to_num(np.nanmean(x, axis=0))
        std = np.nan_to_num(np.nanstd(x, axis=0))
        self.x_scale = np.where(std > 0, std, 1.0)
        self.y_mean = float(np.average(yv, weights=sample_weight))
        y_std = float(np.sqrt(np.average((yv - self.y_mean) ** 2, weights=sample_weight)))
        self.y_scale = y_std if y_std > 0 else 1.0
        self.model = BayesianRidge(**self._params)
        self.model.fit(self._scale(x), (yv - self.y_mean) / self.y_scale, sample_weight=sample_weight)
        return self

    def _scale(self, x: np.ndarray) -> np.ndarray:
        z = (x - self.x_mean) / self.x_scale
        return np.where(np.isnan(z), 0.0, z)

    def _predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.model is None:
            raise RuntimeError("bayesian_ridge model is not fitted")
        mean, std = self.model.predict(self._scale(_as_x(X)), return_std=True)
        return mean * self.y_scale + self.y_mean, std * self.y_scale

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Posterior predictive mean, in the target's units."""
        return self._predict(X)[0]

    def predict_std(self, X: np.ndarray) -> np.ndarray:
        """Posterior predictive standard deviation, in the target's units (> 0)."""
        return self._predict(X)[1]

    def save(self, path: str | Path) -> Path:
        """Write the artifact folder: joblib ``model.joblib`` + ``meta.json``."""
        if self.model is None:
            raise RuntimeError("bayesian_ridge model is not fitted; nothing to save")
        path = Path(path)
        write_meta(
            path, {"family": self.family, "params": self.params, "sklearn_version": sklearn.__version__}
        )
        state = {k: getattr(self, k) for k in _BAYES_STATE}
        joblib.dump(state, path / "model.joblib")
        return path

    @classmethod
    def load(cls, path: str | Path) -> Self:
        meta = read_meta(path, cls.family)
        obj = cls(**meta["params"])
        state = joblib.load(Path(path) / "model.joblib")
        for key in _BAYES_STATE:
            setattr(obj, key, state[key])
        return obj


Learner = LgbmRegressor | LgbmClassifier | BayesianRidgeModel
LEARNERS: tuple[type[Learner], ...] = (LgbmRegressor, LgbmClassifier, BayesianRidgeModel)


def load_learner(path: str | Path) -> Learner:
    """The bare learner of an artifact folder written by a ``save`` here, ignoring any wrapper
    (a ``ReturnForecaster`` artifact holds its learner this way). Regime models and wrapped
    artifacts are loaded by :func:`model_code.ml.loading.load_model`."""
    family = read_meta(path)["family"]
    classes: dict[str, type[Learner]] = {c.family: c for c in LEARNERS}
    if family not in classes:
        raise ValueError(f"{path}: {family!r} is not a learner family; known: {sorted(classes)}")
    return classes[family].load(path)
