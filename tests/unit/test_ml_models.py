"""Model wrappers (determinism, accuracy, uncertainty, artifacts) and feature importance."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from model_code.ml.importance import feature_importance, importance_markdown, importance_plot_png
from model_code.ml.loading import load_model
from model_code.ml.models import (
    BayesianRidgeModel,
    LgbmClassifier,
    LgbmRegressor,
    Model,
)

SMALL = {"min_child_samples": 20, "n_estimators": 60, "n_jobs": 1}


def _data(n: int = 1500, k: int = 5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, k))
    y = 0.6 * x[:, 0] - 0.3 * x[:, 1] + 0.5 * rng.normal(size=n)
    return x, y


def test_lgbm_regressor_is_deterministic_for_a_seed():
    x, y = _data()
    a = LgbmRegressor(seed=7, **SMALL).fit(x, y).predict(x)
    b = LgbmRegressor(seed=7, **SMALL).fit(x, y).predict(x)
    assert np.array_equal(a, b)
    assert np.corrcoef(a, y)[0, 1] > 0.7


def test_lgbm_early_stopping_and_params():
    x, y = _data(2000)
    model = LgbmRegressor(n_estimators=500, min_child_samples=20, early_stopping_rounds=10, n_jobs=1)
    model.fit(x[:1500], y[:1500], eval_set=(x[1500:], y[1500:]))
    assert model.best_iteration is not None and model.best_iteration < 500
    p = model.params
    assert p["deterministic"] and p["force_row_wise"] and p["learning_rate"] == 0.05
    assert isinstance(model, Model)


def test_lgbm_classifier_separable_three_classes(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(1200, 4))
    y = np.where(x[:, 0] > 0.5, 1, np.where(x[:, 0] < -0.5, -1, 0))
    clf = LgbmClassifier(**SMALL).fit(x[:900], y[:900], eval_set=(x[900:], y[900:]))
    assert (clf.predict(x[900:]) == y[900:]).mean() > 0.9
    proba = clf.predict_proba(x[900:])
    assert proba.shape == (300, 3) and np.allclose(proba.sum(axis=1), 1.0)
    assert list(clf.classes_) == [-1, 0, 1]
    again = load_model(clf.save(tmp_path / "clf"))
    assert np.array_equal(again.predict_proba(x), clf.predict_proba(x))
    assert np.array_equal(again.predict(x), clf.predict(x))


def test_lgbm_binary_direction_classifier():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(800, 3))
    y = (x[:, 1] + 0.1 * rng.normal(size=800) > 0).astype(int)
    clf = LgbmClassifier(**SMALL).fit(x, y)
    assert (clf.predict(x) == y).mean() > 0.9
    assert clf.predict_proba(x).shape == (800, 2)


def test_bayesian_ridge_std_positive_and_nan_tolerant(tmp_path):
    x, y = _data(500)
    model = BayesianRidgeModel().fit(x, y)
    std = model.predict_std(x)
    assert np.all(std > 0) and np.all(np.isfinite(std))
    assert np.corrcoef(model.predict(x), y)[0, 1] > 0.7
    x_nan = x.copy()
    x_nan[0, 0] = np.nan
    assert np.isfinite(model.predict(x_nan)).all()
    again = load_model(model.save(tmp_path / "br"))
    assert np.array_equal(again.predict(x), model.predict(x))
    assert np.array_equal(again.predict_std(x), model.predict_std(x))


def test_unfitted_and_wrong_family_refused(tmp_path):
    with pytest.raises(RuntimeError, match="not fitted"):
        LgbmRegressor().predict(np.zeros((1, 2)))
    x, y = _data(300)
    BayesianRidgeModel().fit(x, y).save(tmp_path / "br")
    with pytest.raises(ValueError, match="bayesian_ridge"):
        LgbmRegressor.load(tmp_path / "br")


@pytest.mark.parametrize("scoring", ["rank_ic", "mse"])
def test_label_driver_ranks_first_in_gain_and_permutation(scoring):
    rng = np.random.default_rng(3)
    n = 2000
    x = rng.normal(size=(n, 4))
    y = np.tanh(x[:, 2]) + 0.2 * x[:, 0] + 0.3 * rng.normal(size=n)
    names = ["noise_a", "weak", "driver", "noise_b"]
    model = LgbmRegressor(**SMALL).fit(x[:1500], y[:1500])
    groups = np.repeat(np.arange(50), 10) if scoring == "rank_ic" else None
    imp = feature_importance(model, x[1500:], y[1500:], names, scoring=scoring, groups=groups, n_repeats=3)
    assert imp.columns == ["feature", "gain", "permutation", "permutation_std"]
    assert imp["feature"][0] == "driver"
    assert imp.sort("gain", descending=True)["feature"][0] == "driver"
    assert abs(imp["gain"].sum() - 1.0) < 1e-9
    again = feature_importance(model, x[1500:], y[1500:], names, scoring=scoring, groups=groups, n_repeats=3)
    assert imp.equals(again)


def test_importance_for_a_linear_model_has_null_gain():
    x, y = _data(600)
    imp = feature_importance(BayesianRidgeModel().fit(x, y), x, y, [f"f{i}" for i in range(5)], n_repeats=2)
    assert imp["gain"].null_count() == 5 and imp["feature"][0] == "f0"


def test_importance_chart_png_or_markdown():
    frame = pl.DataFrame(
        {
            "feature": ["a", "b"],
            "gain": [0.7, 0.3],
            "permutation": [0.1, 0.02],
            "permutation_std": [0.01, 0.01],
        }
    )
    out = importance_plot_png(frame)
    if isinstance(out, bytes):
        assert out.startswith(b"\x89PNG")
    else:
        assert out == importance_markdown(frame) and "| a |" in out
