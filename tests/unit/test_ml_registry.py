"""Model registry: round trips, expiry, atomic promotion and registration, feature hashes."""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pytest

from model_code.ml.importance import feature_importance, write_importance
from model_code.ml.models import BayesianRidgeModel, LgbmRegressor
from model_code.ml.registry import (
    ModelExpired,
    ModelNotFound,
    ModelRegistry,
    feature_list_hash,
    load_artifact,
)
from model_code.warehouse import Warehouse

FEATURES = ["mom_1_20", "rv_21", "bb_pos_20", "adx_14"]
TRAINED = dt.datetime(2024, 1, 5, 12, 0)
WINDOW = {"train_start": dt.date(2019, 1, 2), "train_end": dt.date(2023, 12, 29)}


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(800, len(FEATURES)))
    x[rng.random(x.shape) < 0.02] = np.nan  # missing features, as in a real panel
    y = 0.01 * np.nan_to_num(x[:, 0]) + 0.01 * rng.normal(size=800)
    return x, y


def _lgbm(data, seed: int = 0) -> LgbmRegressor:
    return LgbmRegressor(seed=seed, min_child_samples=20, n_estimators=40, n_jobs=1).fit(*data)


def _register(registry: ModelRegistry, model, **kw) -> str:
    args = {
        "horizon": 5,
        "feature_list": FEATURES,
        "cv_metrics": {"rank_ic": 0.03, "bad": float("nan")},
        "trained_at": TRAINED,
        **WINDOW,
        **kw,
    }
    return registry.register(model, **args)


@pytest.fixture
def registry(warehouse: Warehouse, tmp_path) -> ModelRegistry:
    return ModelRegistry(warehouse, tmp_path / "models")


@pytest.mark.parametrize("kind", ["lgbm", "bayes"])
def test_register_and_reload_predict_identically(registry, data, kind):
    x, _ = data
    model = _lgbm(data) if kind == "lgbm" else BayesianRidgeModel().fit(*data)
    model_id = _register(registry, model, ttl_days=30)
    assert model_id.startswith(f"{model.family}-h5-")
    loaded, rec = registry.load(model_id, as_of=dt.date(2024, 1, 10))
    assert np.array_equal(loaded.predict(x), model.predict(x))
    assert type(loaded) is type(model)
    assert rec.status == "challenger" and rec.feature_list == FEATURES
    assert rec.feature_list_hash == feature_list_hash(FEATURES)
    assert rec.cv_metrics == {"rank_ic": 0.03, "bad": None} and rec.params == model.params
    assert rec.expires_at == TRAINED + dt.timedelta(days=30)
    assert rec.train_end == WINDOW["train_end"]
    assert (registry.artifact_root / model_id / "meta.json").is_file()
    assert not list(registry.artifact_root.glob(".tmp-*"))


def test_default_artifact_root_is_under_pm_home(warehouse, isolated_pm_home):
    assert ModelRegistry(warehouse).artifact_root == isolated_pm_home.resolve() / "models"


def test_expired_model_is_refused_with_a_clear_message(registry, data):
    model_id = _register(registry, _lgbm(data), ttl_days=7)
    registry.load(model_id, as_of=dt.datetime(2024, 1, 12, 11, 0))  # still fresh
    with pytest.raises(ModelExpired) as info:
        registry.load(model_id, as_of=dt.date(2024, 2, 1))
    msg = str(info.value)
    assert model_id in msg and "expired at 2024-01-12 12:00" in msg and "Retrain" in msg
    with pytest.raises(ModelExpired):
        registry.load(model_id)  # as_of defaults to now, long after 2024
    with pytest.raises(ModelNotFound):
        registry.load("nope")


def test_promote_retires_the_previous_champion_atomically(registry, data, monkeypatch):
    old = _register(registry, _lgbm(data, seed=1), status="champion", ttl_days=None)
    new = _register(registry, _lgbm(data, seed=2), ttl_days=None)
    other = _register(registry, _lgbm(data, seed=3), horizon=21, status="champion", ttl_days=None)
    assert registry.champion("lgbm_regressor", 5).model_id == old

    real_execute = registry.warehouse.execute

    def failing(sql, params=None):
        if "SET status = 'champion'" in sql:
            raise RuntimeError("disk full")
        return real_execute(sql, params)

    monkeypatch.setattr(registry.warehouse, "execute", failing)
    with pytest.raises(RuntimeError, match="disk full"):
        registry.promote(new)
    monkeypatch.undo()
    assert registry.record(old).status == "champion"  # the retirement was rolled back
    assert registry.record(new).status == "challenger"

    registry.promote(new)
    assert registry.record(old).status == "retired"
    assert registry.champion("lgbm_regressor", 5, as_of=dt.date(2030, 1, 1)).model_id == new
    assert registry.champion("lgbm_regressor", 21).model_id == other  # another horizon untouched
    assert registry.champion("bayesian_ridge", 5) is None
    champions = [r for r in registry.records("lgbm_regressor", 5) if r.status == "champion"]
    assert [r.model_id for r in champions] == [new]


def test_registering_a_champion_retires_the_old_one(registry, data):
    first = _register(registry, _lgbm(data, seed=1), status="champion")
    second = _register(registry, _lgbm(data, seed=2), status="champion")
    assert registry.record(first).status == "retired"
    assert registry.champion("lgbm_regressor", 5).model_id == second


def test_champion_past_expiry_is_refused(registry, data):
    _register(registry, _lgbm(data), status="champion", ttl_days=1)
    with pytest.raises(ModelExpired, match="expired at 2024-01-06 12:00"):
        registry.champion("lgbm_regressor", 5, as_of=dt.date(2024, 3, 1))


def test_a_failing_db_write_leaves_no_artifact(registry, data):
    registry.warehouse.execute("DROP TABLE models.registry")
    with pytest.raises(Exception, match="registry"):
        _register(registry, _lgbm(data))
    assert not registry.artifact_root.exists() or not any(registry.artifact_root.iterdir())


def test_a_duplicate_id_keeps_the_existing_artifact(registry, data):
    model = _lgbm(data)
    model_id = _register(registry, model)
    with pytest.raises(Exception, match="(?i)constraint|duplicate"):
        _register(registry, model)  # same config and trained_at: same id
    assert (registry.artifact_root / model_id / "model.txt").is_file()
    assert [p.name for p in registry.artifact_root.iterdir()] == [model_id]


def test_bad_status_refused_before_anything_is_written(registry, data):
    with pytest.raises(ValueError, match="status"):
        _register(registry, _lgbm(data), status="king")
    assert not registry.artifact_root.exists()


def test_feature_hash_is_stable_and_order_sensitive():
    h = feature_list_hash(FEATURES)
    assert h == feature_list_hash(list(FEATURES)) == feature_list_hash(tuple(FEATURES))
    assert len(h) == 64
    assert h != feature_list_hash(list(reversed(FEATURES)))
    assert h != feature_list_hash(FEATURES[:-1])


def test_importance_rows_are_written_per_model(registry, data):
    x, y = data
    model = _lgbm(data)
    model_id = _register(registry, model)
    frame = feature_importance(model, x, y, FEATURES, n_repeats=2)
    assert write_importance(registry.warehouse, model_id, frame) == len(FEATURES)
    write_importance(registry.warehouse, model_id, frame)  # idempotent
    stored = registry.warehouse.query(
        "SELECT feature, gain FROM models.feature_importance WHERE model_id = ? ORDER BY gain DESC",
        [model_id],
    )
    assert stored.height == len(FEATURES) and stored["feature"][0] == "mom_1_20"


def test_a_failing_rename_rolls_the_row_back(registry, data, monkeypatch):
    def broken_rename(self, target):
        raise OSError("rename failed")

    monkeypatch.setattr("pathlib.Path.rename", broken_rename)
    with pytest.raises(OSError, match="rename failed"):
        _register(registry, _lgbm(data))
    monkeypatch.undo()
    assert registry.warehouse.count("models.registry") == 0
    assert not any(registry.artifact_root.iterdir())


def test_load_artifact_reads_files_only_and_finds_a_moved_folder(registry, data, tmp_path):
    x, _ = data
    model = _lgbm(data)
    rec = registry.record(_register(registry, model, ttl_days=1))
    registry.warehouse.conn.close()  # no warehouse needed, and no expiry check
    assert np.array_equal(load_artifact(rec).predict(x), model.predict(x))
    moved = dataclasses.replace(rec, artifact_path=str(tmp_path / "gone"))
    assert np.array_equal(load_artifact(moved, registry.artifact_root).predict(x), model.predict(x))
    with pytest.raises(FileNotFoundError, match="missing at"):
        load_artifact(moved, tmp_path / "elsewhere")
