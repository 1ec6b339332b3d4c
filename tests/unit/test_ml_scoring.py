"""Scoring the champions: rows per as_of, and every refusal (expired, look-ahead, none, not a forecaster)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from model_code.features import build_daily_features, build_targets
from model_code.features.synthetic import synthetic_bars
from model_code.forecasting.predictions import PREDICTION_SCHEMA, target_dates
from model_code.ml.forecasts import prediction_rows
from model_code.ml.lifecycle import known_at, train_horizons
from model_code.ml.models import LgbmRegressor
from model_code.ml.registry import ModelRegistry, RegistryRecord, load_artifact
from model_code.ml.scoring import SKIP_REASONS, ScoringResult, champion_label, score_champions

FAST = {"n_jobs": 1, "n_estimators": 40, "min_child_samples": 20}
LGBM = ("lgbm_regressor", 5)


@pytest.fixture(scope="module")
def frames() -> tuple[pl.DataFrame, pl.DataFrame, list[dt.date]]:
    bars = synthetic_bars(20, 380, seed=11, gap_fraction=0.01, close_only=1)
    return build_daily_features(bars), build_targets(bars), bars["date"].unique().sort().to_list()


@pytest.fixture(scope="module")
def fit(frames):
    """A real h=5 forecaster trained on what was known at the close of the 10th-last session."""
    feats, targets, sessions = frames
    f, t = known_at(feats, targets, sessions[-10], (5,))
    [hf] = train_horizons(f, t, [5], train_years=0.75, valid_months=3, params=FAST, importance_repeats=1)
    assert hf.fit.forecaster.data_end == sessions[-10]
    return hf


def _champion(registry: ModelRegistry, model, *, trained: dt.date, ttl_days: float | None) -> RegistryRecord:
    registry.register(
        model,
        horizon=5,
        train_start=dt.date(2015, 1, 2),
        train_end=trained,
        feature_list=getattr(model, "feature_columns", ("a", "b")),
        status="champion",
        trained_at=dt.datetime.combine(trained, dt.time.min),
        ttl_days=ttl_days,
    )
    rec = registry.champion(model.family, 5)
    assert rec is not None
    return rec


def test_scores_usable_sessions_and_says_why_the_others_were_refused(frames, fit, warehouse, tmp_path):
    feats, _, sessions = frames
    registry = ModelRegistry(warehouse, tmp_path / "models")
    # Expires at noon of the 5th-last session: usable at its close's date, refused from the next.
    ttl = (sessions[-5] - sessions[-10]).days + 0.5
    rec = _champion(registry, fit.fit.forecaster, trained=sessions[-10], ttl_days=ttl)
    window = sessions[-12:]
    calls: list[str] = []

    def load(record: RegistryRecord):
        calls.append(record.model_id)
        return load_artifact(record, registry.artifact_root)

    result = score_champions(
        {LGBM: rec, ("bayesian_ridge", 5): None},
        load,
        feats.filter(pl.col("date").is_in(window)),
        window,
    )
    assert calls == [rec.model_id]  # loaded once for twelve sessions
    usable = sessions[-10:-4]
    assert result.scored == {"lgbm h=5"} and result.model_ids == {rec.model_id}
    assert sorted(result.rows["as_of"].unique()) == usable
    assert {d: n for d, n in result.rows_per_session.items() if n} == {
        d: feats.filter(pl.col("date") == d).height for d in usable
    }
    assert set(result.rows_per_session) == set(window)
    assert result.rows.schema == pl.Schema(PREDICTION_SCHEMA)
    assert result.rows.select("as_of", "ticker", "model", "horizon").is_unique().all()

    # The rows of an as_of are the forecaster's own forecast of that day's features.
    as_of = usable[2]
    day = feats.filter(pl.col("date") == as_of)
    expected = prediction_rows(
        fit.fit.forecaster.forecast(day),
        as_of=as_of,
        model="lgbm",
        horizon=5,
        target_date=target_dates(as_of, [5])[5],
    )
    assert result.rows.filter(pl.col("as_of") == as_of).equals(expected)
    assert result.tickers == max(feats.filter(pl.col("date") == d)["ticker"].n_unique() for d in usable)

    assert result.labels("no_champion") == ["bayesian_ridge h=5"]
    assert (
        "no champion bayesian_ridge model for horizon 5"
        in result.skipped["no_champion"]["bayesian_ridge h=5"]
    )
    assert result.labels("not_point_in_time") == ["lgbm h=5"]
    look_ahead = result.skipped["not_point_in_time"]["lgbm h=5"]
    assert str(sessions[-10]) in look_ahead and f"after as_of {sessions[-12]}" in look_ahead
    assert result.labels("expired") == ["lgbm h=5"]
    assert (
        "expired at" in result.skipped["expired"]["lgbm h=5"]
        and "Retrain" in result.skipped["expired"]["lgbm h=5"]
    )
    assert result.labels("not_a_forecaster") == []
    assert set(result.skipped) == set(SKIP_REASONS)


def test_a_champion_expired_at_every_session_is_never_loaded(frames, fit, warehouse, tmp_path):
    feats, _, sessions = frames
    registry = ModelRegistry(warehouse, tmp_path / "models")
    rec = _champion(registry, fit.fit.forecaster, trained=sessions[-10], ttl_days=1)

    def load(record: RegistryRecord):
        raise AssertionError(f"{record.model_id} is expired and must not be loaded")

    result = score_champions({LGBM: rec}, load, feats, sessions[-3:])
    assert result.rows.height == 0 and result.scored == frozenset() and result.tickers == 0
    assert result.labels("expired") == ["lgbm h=5"]
    assert result.rows_per_session == dict.fromkeys(sessions[-3:], 0)


def test_a_bare_learner_as_champion_is_not_a_forecaster(frames, warehouse, tmp_path):
    feats, _, sessions = frames
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 2))
    learner = LgbmRegressor(**FAST).fit(x, x[:, 0] + 0.1 * rng.normal(size=400))
    registry = ModelRegistry(warehouse, tmp_path / "models")
    rec = _champion(registry, learner, trained=sessions[-10], ttl_days=None)
    result = score_champions(
        {LGBM: rec}, lambda r: load_artifact(r, registry.artifact_root), feats, sessions[-2:]
    )
    assert result.rows.height == 0
    assert result.labels("not_a_forecaster") == ["lgbm h=5"]
    assert "LgbmRegressor, not a ReturnForecaster" in result.skipped["not_a_forecaster"]["lgbm h=5"]


def test_sessions_without_features_and_no_champions_give_empty_rows(fit, warehouse, tmp_path, frames):
    feats, _, sessions = frames
    registry = ModelRegistry(warehouse, tmp_path / "models")
    rec = _champion(registry, fit.fit.forecaster, trained=sessions[-10], ttl_days=None)
    after = sessions[-1] + dt.timedelta(days=3)  # a date with no feature rows
    result = score_champions({LGBM: rec}, load_artifact, feats, [after])
    assert result.rows.height == 0 and result.rows_per_session == {after: 0}
    assert all(not result.skipped[r] for r in SKIP_REASONS)
    nothing = score_champions({}, load_artifact, feats, sessions[-2:])
    assert isinstance(nothing, ScoringResult) and nothing.rows.schema == pl.Schema(PREDICTION_SCHEMA)


def test_champion_label_uses_the_prediction_model_name():
    assert champion_label("lgbm_regressor", 21) == "lgbm h=21"
    assert champion_label("bayesian_ridge", 1) == "bayesian_ridge h=1"
    assert champion_label("other", 5) == "other h=5"
