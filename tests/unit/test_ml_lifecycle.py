"""Training every horizon with no warehouse, then registering them all in one transaction."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace

import polars as pl
import pytest

from model_code.features import build_daily_features, build_targets
from model_code.features.synthetic import synthetic_bars
from model_code.ml.lifecycle import (
    FAMILIES,
    MODEL_NAMES,
    register_fits,
    train_horizons,
    training_windows,
)
from model_code.ml.registry import ModelRegistry
from model_code.warehouse import WarehouseError

FAST = {"n_jobs": 1, "n_estimators": 40, "min_child_samples": 20}
WINDOWS = {"train_years": 0.75, "valid_months": 3}
NOW = dt.datetime(2024, 6, 1, 12, 0)


@pytest.fixture(scope="module")
def frames() -> tuple[pl.DataFrame, pl.DataFrame]:
    bars = synthetic_bars(20, 380, seed=5, gap_fraction=0.01, close_only=1)
    return build_daily_features(bars), build_targets(bars)


@pytest.fixture(scope="module")
def trained(frames):
    seen = []
    fits = train_horizons(
        *frames, [5, 1], **WINDOWS, params=FAST, importance_repeats=1, on_trained=seen.append
    )
    return fits, seen


@pytest.fixture
def registry(warehouse, tmp_path) -> ModelRegistry:
    return ModelRegistry(warehouse, tmp_path / "models")


def _status(registry: ModelRegistry) -> dict[str, str]:
    return dict(registry.warehouse.execute("SELECT model_id, status FROM models.registry"))


def test_every_family_has_a_prediction_model_name():
    assert set(FAMILIES) == set(MODEL_NAMES)


def test_train_horizons_fits_each_horizon_in_order_on_its_own_windows(frames, trained):
    _, targets = frames
    fits, seen = trained
    assert [hf.horizon for hf in fits] == [5, 1] and seen == fits
    for hf in fits:
        assert hf.windows == training_windows(targets, hf.horizon, **WINDOWS)
        fc = hf.fit.forecaster
        assert fc.horizon == hf.horizon and fc.data_end == hf.windows.data_end
        assert fc.family == "lgbm_regressor" and fc.trained.model.params["n_estimators"] == 40
        assert hf.seconds > 0 and hf.fit.importance.height == len(fc.feature_columns)
    with pytest.raises(ValueError, match="family must be one of"):
        train_horizons(*frames, [1], **WINDOWS, family="lgbm_classifier")  # type: ignore[arg-type]


def test_register_fits_writes_importance_tracks_and_a_decision_per_horizon(trained, registry):
    # Random-walk bars: no model has skill, so governance promotes none and the family abstains.
    fits, _ = trained
    first = register_fits(registry.warehouse, fits, expiry_days=30, registry=registry, now=NOW)
    assert [(r.horizon, r.status) for r in first] == [(5, "challenger"), (1, "challenger")]
    for hf, reg in zip(fits, first, strict=True):
        assert reg.decision.action == "abstain" and reg.reason.startswith("no earlier champion; ")
        assert reg.model_id in reg.reason and reg.decision.rival == "random_walk"
        rec = registry.record(reg.model_id)
        assert rec.horizon == hf.horizon and rec.trained_at == NOW and rec.status == "challenger"
        assert rec.expires_at == NOW + dt.timedelta(days=30)
        assert (rec.train_start, rec.train_end) == hf.windows.train
        assert rec.cv_metrics["rank_ic"] == pytest.approx(hf.fit.metrics["rank_ic"])
        assert rec.cv_metrics["oof_days"] == hf.fit.track.height > 50
        assert rec.cv_metrics["data_end"] == hf.windows.data_end.isoformat()
        assert rec.cv_metrics["valid_start"] == hf.windows.valid[0].isoformat()
        assert (registry.artifact_root / reg.model_id / "forecaster.json").is_file()
        assert (registry.artifact_root / reg.model_id / "track_record.parquet").is_file()
        n = registry.warehouse.execute(
            "SELECT count(*) FROM models.feature_importance WHERE model_id = ?", [reg.model_id]
        )[0][0]
        assert n == len(hf.fit.forecaster.feature_columns)
    assert registry.champion("lgbm_regressor", 5) is None
    logged = registry.warehouse.query("SELECT * FROM models.decisions ORDER BY horizon")
    assert logged["action"].to_list() == ["abstain", "abstain"] and logged["horizon"].to_list() == [1, 5]
    evidence = json.loads(logged["evidence"][1])
    assert evidence["dates"] == fits[0].fit.track.height and 0 <= evidence["dm_p_one_sided"] <= 1


def test_a_failure_registers_nothing_and_leaves_no_artifact(trained, registry):
    fits, _ = trained
    kept = register_fits(registry.warehouse, fits, expiry_days=30, registry=registry, now=NOW)
    before = _status(registry)
    # The second horizon's importance repeats a feature: its upsert refuses the batch, after the
    # first horizon's model was registered (and promoted) inside the same transaction.
    bad_importance = pl.concat([fits[1].fit.importance, fits[1].fit.importance])
    broken = [fits[0], replace(fits[1], fit=replace(fits[1].fit, importance=bad_importance))]
    with pytest.raises(WarehouseError, match="more than once"):
        register_fits(
            registry.warehouse, broken, expiry_days=30, registry=registry, now=NOW + dt.timedelta(hours=1)
        )
    assert _status(registry) == before  # the old champions were not retired
    assert sorted(p.name for p in registry.artifact_root.iterdir()) == sorted(r.model_id for r in kept)
    n = registry.warehouse.execute("SELECT count(DISTINCT model_id) FROM models.feature_importance")[0][0]
    assert n == len(kept)
