"""ML scores as return forecasts: calibration, conformal intervals, artifacts, windows, promotion."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import replace

import numpy as np
import polars as pl
import pytest

from model_code.features import build_daily_features, build_targets
from model_code.features.synthetic import synthetic_bars
from model_code.forecasting.predictions import PREDICTION_SCHEMA
from model_code.ml.forecasts import (
    ReturnCalibration,
    ReturnForecaster,
    conformal_quantile,
    fit_calibration,
    horizon_scale,
    prediction_rows,
)
from model_code.ml.lifecycle import (
    _same_configuration,
    _unusable,
    fit_forecaster,
    history_start,
    known_at,
    months_before,
    training_windows,
)
from model_code.ml.loading import load_model
from model_code.ml.registry import ModelExpired, ModelRegistry, RegistryRecord, feature_list_hash
from model_code.ml.training import train_horizon_model

FAST = {"n_jobs": 1, "n_estimators": 60, "min_child_samples": 20}
NOW = dt.datetime(2024, 6, 1)


@pytest.fixture(scope="module")
def bars() -> pl.DataFrame:
    return synthetic_bars(30, 420, seed=4, gap_fraction=0.01, close_only=1)


@pytest.fixture(scope="module")
def frames(bars) -> tuple[pl.DataFrame, pl.DataFrame]:
    return build_daily_features(bars), build_targets(bars)


@pytest.fixture(scope="module")
def fitted(frames):
    feats, targets = frames
    windows = training_windows(targets, 5, train_years=0.75, valid_months=3)
    return windows, fit_forecaster(feats, targets, 5, windows, params=FAST, importance_repeats=2)


def _calibration_frame(n_dates=200, n_tickers=40, beta=0.01, seed=0) -> pl.DataFrame:
    """Returns = market move per date + beta * score + noise scaled by each ticker's vol."""
    rng = np.random.default_rng(seed)
    dates = np.repeat(np.arange(n_dates), n_tickers)
    score = rng.standard_normal(dates.size)
    market = rng.standard_normal(n_dates)[dates] * 0.02
    rv = np.tile(np.linspace(0.1, 0.6, n_tickers), n_dates)  # annualized
    sigma = rv / math.sqrt(252)
    y = 0.001 + market + beta * score + sigma * rng.standard_normal(dates.size)
    base = dt.date(2020, 1, 1)
    return pl.DataFrame(
        {
            "date": [base + dt.timedelta(days=int(d)) for d in dates],
            "score": score,
            "y": y,
            "rv": rv,
        }
    )


def test_horizon_scale_and_conformal_ranks():
    s = horizon_scale(np.array([0.2, np.nan, 0.0, -1.0]), 4)
    assert s[0] == pytest.approx(0.2 * math.sqrt(4 / 252)) and np.isnan(s[1:]).all()
    v = np.arange(1.0, 20.0)  # n = 19: (n + 1) * 0.9 = 18 -> the 18th smallest
    assert conformal_quantile(v, 0.9) == 18.0 and conformal_quantile(v, 0.1) == 2.0
    assert conformal_quantile(v, 0.999) == 19.0 and conformal_quantile(v, 0.001) == 1.0
    with pytest.raises(ValueError):
        conformal_quantile(np.array([np.nan]), 0.5)


def test_calibration_uses_within_date_slope_and_scaled_intervals_cover():
    cal = fit_calibration(_calibration_frame(), 1)
    # Market moves twice the signal's size are absorbed by the per-date demeaning.
    assert cal.slope == pytest.approx(0.01, rel=0.1)
    assert cal.intercept == pytest.approx(0.001, abs=0.004)
    fresh = _calibration_frame(seed=1)
    yhat = cal.yhat(fresh["score"].to_numpy())
    scale = cal.scale(fresh["rv"].to_numpy())
    y = fresh["y"].to_numpy()
    for p, lo, hi in ((80, "lower_80", "upper_80"), (95, "lower_95", "upper_95")):
        inside = (y >= yhat + cal.quantiles[lo] * scale) & (y <= yhat + cal.quantiles[hi] * scale)
        assert abs(inside.mean() - p / 100) < 0.03, p
    # A volatile ticker gets a proportionally wider interval than a quiet one.
    wide = cal.scale(np.array([0.6, 0.1]))
    assert wide[0] / wide[1] == pytest.approx(6.0)
    assert ReturnCalibration.from_dict(cal.to_dict()) == cal


def test_backwards_ranking_forecasts_the_drift_only():
    cal = fit_calibration(_calibration_frame(beta=-0.01), 1)
    assert cal.slope == 0.0
    frame = _calibration_frame(beta=-0.01)
    assert cal.intercept == pytest.approx(frame["y"].mean())
    # No rv at all: the scale falls back to the std of the returns.
    no_rv = fit_calibration(frame.with_columns(rv=pl.lit(None, pl.Float64)), 1)
    assert no_rv.fallback_scale == pytest.approx(frame["y"].std(ddof=0))


def test_windows_end_at_the_latest_realized_label_and_known_at_cuts_the_future(frames):
    _, targets = frames
    last_bar = targets["date"].max()
    w = training_windows(targets, 21, train_years=0.5, valid_months=2)
    assert w.data_end == last_bar and w.valid[1] == last_bar
    assert w.last_labelled == targets.filter(pl.col("fwd_ret_21").is_not_null())["date"].max()
    assert w.valid[0] == months_before(w.last_labelled, 2) and w.train[1] == w.valid[0] - dt.timedelta(days=1)
    assert months_before(dt.date(2020, 3, 31), 1) == dt.date(2020, 2, 29)
    assert months_before(dt.date(2020, 1, 15), 13) == dt.date(2018, 12, 15)
    with pytest.raises(ValueError, match="shorten valid_months"):
        training_windows(targets, 21, train_years=1, valid_months=60)
    # Reading from history_start changes no window (nor clips a training start).
    first = history_start(last_bar, train_years=0.5, valid_months=2, max_horizon=63)
    assert first > targets["date"].min()
    for h in (1, 21, 63):
        recent = targets.filter(pl.col("date") >= first)
        full = training_windows(targets, h, train_years=0.5, valid_months=2)
        assert training_windows(recent, h, train_years=0.5, valid_months=2) == full
        assert full.train[0] > first

    until = targets["date"].unique().sort()[200]
    f2, t2 = known_at(*frames, until, (1, 5, 21, 63))
    assert f2["date"].max() == until and t2["date"].max() == until
    for h in (1, 63):
        assert t2[f"target_date_{h}"].max() <= until
        late = t2.filter(pl.col(f"target_date_{h}").is_null() & pl.col(f"fwd_ret_{h}").is_not_null())
        assert late.height == 0
    assert (
        t2["trailing_vol_21"].null_count()
        == targets.filter(pl.col("date") <= until)["trailing_vol_21"].null_count()
    )


def test_fit_forecaster_calibrates_measures_importance_and_is_point_in_time(frames, fitted, bars):
    feats, _ = frames
    windows, fit = fitted
    fc = fit.forecaster
    assert fc.data_end == windows.data_end and fc.family == "lgbm_regressor"
    assert fc.params["label"] == "fwd_ret_z" and fc.params["label_transform"] == "cs_rank"
    assert 0.75 < fit.metrics["interval_coverage_80"] < 0.85
    assert 0.92 < fit.metrics["interval_coverage_95"] < 0.98
    assert {"rank_ic", "ic", "hit", "score_hit", "cal_slope", "cal_q_upper_95"} <= set(fit.metrics)
    assert fit.importance["feature"].sort().to_list() == sorted(fc.feature_columns)
    assert fit.importance["gain"].sum() == pytest.approx(1.0)
    assert fc.usable_at(windows.data_end) and not fc.usable_at(windows.data_end - dt.timedelta(days=1))

    t = feats["date"].unique().sort()[-25]
    full = fc.forecast(feats).filter(pl.col("date") == t)
    trunc = fc.forecast(build_daily_features(bars.filter(pl.col("date") <= t))).filter(pl.col("date") == t)
    assert full.height == trunc.height > 20
    assert full.sort("ticker").equals(trunc.sort("ticker"))
    ordered = ["lower_95", "lower_80", "yhat", "upper_80", "upper_95"]
    for lo, hi in zip(ordered, ordered[1:], strict=False):
        assert (full[lo] <= full[hi]).all()


@pytest.mark.parametrize("family", ["lgbm_regressor", "bayesian_ridge"])
def test_registry_round_trip_gives_identical_forecasts_and_refuses_expired(
    frames, fitted, warehouse, tmp_path, family
):
    feats, targets = frames
    windows, fit = fitted
    if family == "bayesian_ridge":
        fit = fit_forecaster(feats, targets, 5, windows, family=family, importance_repeats=1)
    registry = ModelRegistry(warehouse, tmp_path / "models")
    fc = fit.forecaster
    model_id = registry.register(
        fc,
        horizon=5,
        train_start=windows.train[0],
        train_end=windows.train[1],
        feature_list=fc.feature_columns,
        cv_metrics=fit.metrics,
        trained_at=NOW,
        ttl_days=30,
    )
    assert model_id.startswith(f"{family}-h5-")
    loaded, rec = registry.load(model_id, as_of=NOW.date())
    assert isinstance(loaded, ReturnForecaster) and isinstance(
        load_model(rec.artifact_path), ReturnForecaster
    )
    day = feats.filter(pl.col("date") >= windows.data_end - dt.timedelta(days=10))
    assert loaded.forecast(day).equals(fc.forecast(day))
    assert loaded.calibration == fc.calibration and loaded.data_end == fc.data_end
    assert (loaded.train, loaded.valid) == (fc.train, fc.valid)
    with pytest.raises(ModelExpired, match="Retrain"):
        registry.load(model_id, as_of=NOW + dt.timedelta(days=31))


def test_forecaster_refuses_regime_models(frames, bars):
    from model_code.ml.regime import market_regime_inputs

    feats, targets = frames
    dates = targets["date"].unique().sort()
    train, valid = (dates[0], dates[250]), (dates[251], dates[-1])
    trained = train_horizon_model(
        feats, targets, 1, train=train, valid=valid, params=FAST, market=market_regime_inputs(bars)
    )
    cal = ReturnCalibration(1, 0.0, 0.0, {"lower_80": -1.0}, 1.0, 0.01, 10)
    with pytest.raises(ValueError, match="regime"):
        ReturnForecaster(trained, cal, valid[1], train, valid)


def test_prediction_rows_have_the_forecasts_layout(fitted, frames):
    feats, _ = frames
    _, fit = fitted
    as_of = feats["date"].max()
    fc = fit.forecaster.forecast(feats.filter(pl.col("date") == as_of))
    rows = prediction_rows(fc, as_of=as_of, model="lgbm", horizon=5, target_date=as_of + dt.timedelta(days=7))
    assert rows.schema == pl.Schema(PREDICTION_SCHEMA)
    assert rows.height == fc.height and rows["fit_seconds"].null_count() == rows.height
    assert rows["yhat"].to_list() == fc["yhat"].to_list()
    with pytest.raises(ValueError, match="passed for as_of"):
        prediction_rows(
            fit.forecaster.forecast(feats.tail(100)), as_of=as_of, model="lgbm", horizon=5, target_date=as_of
        )


def _record(**kw) -> RegistryRecord:
    base = {
        "model_id": "lgbm_regressor-h5-old",
        "family": "lgbm_regressor",
        "horizon": 5,
        "trained_at": NOW - dt.timedelta(days=7),
        "train_start": dt.date(2020, 1, 2),
        "train_end": dt.date(2023, 1, 3),
        "params": {},
        "cv_metrics": {"rank_ic": 0.02, "cal_slope": 0.1},
        "feature_list_hash": feature_list_hash(["a", "b"]),
        "feature_list": ["a", "b"],
        "artifact_path": "/nowhere",
        "status": "champion",
        "expires_at": NOW + dt.timedelta(days=23),
    }
    return RegistryRecord(**{**base, **kw})


def test_a_champion_is_no_incumbent_when_expired_or_not_a_forecaster(fitted):
    # Governance then gates the new model against the random walk instead (test_ml_governance).
    assert _unusable(None, NOW) == "no earlier champion"
    assert _unusable(_record(), NOW) is None
    assert _unusable(_record(expires_at=NOW - dt.timedelta(hours=1)), NOW).endswith("UTC")
    assert "not a return forecaster" in _unusable(_record(cv_metrics={"rank_ic": 0.5}), NOW)
    fc = fitted[1].forecaster
    same = _record(
        params=fc.params, feature_list_hash=feature_list_hash(fc.feature_columns), family=fc.family
    )
    assert _same_configuration(same, fc)
    assert not _same_configuration(_record(params={**fc.params, "num_leaves": 3}), fc)
    assert not _same_configuration(replace(same, feature_list_hash="x"), fc)
