"""Horizon training: purge, train-only normalizer, no look-ahead in predict, planted signal."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from model_code.features import build_daily_features, build_targets
from model_code.features.synthetic import synthetic_bars
from model_code.ml.cv import TrialLog
from model_code.ml.regime import market_regime_inputs
from model_code.ml.training import evaluate, newey_west_t, predict, train_horizon_model

H = 5
TRAIN = (dt.date(2015, 1, 2), dt.date(2015, 12, 31))
VALID = (dt.date(2016, 1, 4), dt.date(2016, 6, 30))
TEST = (dt.date(2016, 7, 1), dt.date(2016, 12, 30))
FAST = {"n_jobs": 1, "n_estimators": 200}


@pytest.fixture(scope="module")
def bars() -> pl.DataFrame:
    return synthetic_bars(40, 500, seed=11, gap_fraction=0.02, close_only=2)


@pytest.fixture(scope="module")
def frames(bars) -> tuple[pl.DataFrame, pl.DataFrame]:
    return build_daily_features(bars), build_targets(bars, (1, H))


@pytest.fixture(scope="module")
def planted(frames) -> pl.DataFrame:
    """Targets whose 5-bar label is 0.5 * (per-date z-score of bb_pos_20) + unit noise."""
    feats, targets = frames
    x = pl.col("bb_pos_20")
    z = ((x - x.mean().over("date")) / x.std().over("date")).fill_null(0.0).fill_nan(0.0)
    noise = np.random.default_rng(5).standard_normal(feats.height)
    sig = feats.select("ticker", "date", (0.5 * z).alias("_s")).with_columns(pl.Series("_n", noise))
    out = targets.join(sig, on=["ticker", "date"], how="left")
    y = pl.when(pl.col(f"fwd_ret_{H}").is_not_null()).then(0.01 * (pl.col("_s") + pl.col("_n")))
    return out.with_columns(y.alias(f"fwd_ret_{H}"), y.alias(f"fwd_ret_{H}_z")).drop("_s", "_n")


def test_purge_keeps_training_labels_before_validation(frames) -> None:
    feats, targets = frames
    log = TrialLog()
    m = train_horizon_model(feats, targets, H, train=TRAIN, valid=VALID, params=FAST, trial_log=log)
    assert m.train_label_end_max is not None and m.train_label_end_max < VALID[0]
    assert m.valid_metrics["purged_rows"] > 0  # rows near the train end were really dropped
    assert len(log) == 1 and log.trials[0].window_start == VALID[0]


def test_normalizer_is_fitted_on_the_train_window_only(frames) -> None:
    feats, targets = frames
    m1 = train_horizon_model(feats, targets, H, train=TRAIN, valid=VALID, params=FAST)
    assert (m1.normalizer.fit_start, m1.normalizer.fit_end) == TRAIN
    # Corrupt every feature after the train window: the learned fill values must not move.
    later = pl.col("date") > TRAIN[1]
    cols = [c for c in feats.columns if feats.schema[c].is_float()]
    noisy = feats.with_columns(
        pl.when(later).then(pl.col(c) * 7.0 + 3.0).otherwise(pl.col(c)).alias(c) for c in cols
    )
    m2 = train_horizon_model(noisy, targets, H, train=TRAIN, valid=VALID, params=FAST)
    assert m1.normalizer.fill_values_ == m2.normalizer.fill_values_


@pytest.mark.parametrize("regime", [False, True])
def test_prediction_for_t_ignores_data_after_t(bars, frames, regime) -> None:
    feats, targets = frames
    market = market_regime_inputs(bars) if regime else None
    m = train_horizon_model(feats, targets, H, train=TRAIN, valid=VALID, params=FAST, market=market)
    assert any(c.startswith("p_state_") for c in m.feature_columns) == regime
    for t in (dt.date(2016, 8, 15), dt.date(2016, 11, 1)):
        cut = bars.filter(pl.col("date") <= t)
        cut_market = market_regime_inputs(cut) if regime else None
        full = predict(m, feats, market).filter(pl.col("date") == t)
        trunc = predict(m, build_daily_features(cut), cut_market).filter(pl.col("date") == t)
        assert full.height == trunc.height > 30
        np.testing.assert_array_equal(full.sort("ticker")["score"], trunc.sort("ticker")["score"])


def test_planted_signal_is_found_and_shuffled_labels_kill_it(frames, planted) -> None:
    feats, _ = frames
    test_feats = feats.filter(pl.col("date").is_between(*TEST))
    for family in ("lgbm_regressor", "bayesian_ridge"):
        m = train_horizon_model(
            feats,
            planted,
            H,
            train=TRAIN,
            valid=VALID,
            family=family,
            params=None if family == "bayesian_ridge" else FAST,
        )
        res = evaluate(predict(m, test_feats), planted, H, TEST)
        assert res["rank_ic"] > 0.2 and res["rank_ic_t"] > 5, (family, res)
        assert res["q_spread"] > 0
    shuffled = train_horizon_model(
        feats, planted, H, train=TRAIN, valid=VALID, params=FAST, shuffle_labels=True
    )
    res = evaluate(predict(shuffled, test_feats), planted, H, TEST)
    assert abs(res["rank_ic"]) < 0.05, res


def test_newey_west_t_shrinks_for_overlapping_series() -> None:
    rng = np.random.default_rng(0)
    iid = rng.standard_normal(2000) + 0.1
    overlapped = np.convolve(rng.standard_normal(2020), np.ones(21) / 21, mode="valid") + 0.1
    plain = overlapped.mean() / overlapped.std(ddof=1) * np.sqrt(overlapped.size)
    assert abs(newey_west_t(iid, 0) - iid.mean() / iid.std(ddof=1) * np.sqrt(iid.size)) < 0.05
    assert newey_west_t(overlapped, 20) < 0.5 * plain


def test_random_walk_and_statistical_rows(frames, tmp_path) -> None:
    from model_code.ml import report

    _, targets = frames
    t = targets.with_columns(pl.col("date") + pl.duration(days=3 * 365))  # move into the report's test window
    rw = report.random_walk_metrics(t, H)
    y = t.filter(pl.col("date").is_between(*report.TEST) & (pl.col(f"fwd_ret_{H}") != 0))
    up = y.group_by("date").agg((pl.col(f"fwd_ret_{H}") > 0).mean())[f"fwd_ret_{H}"].mean()
    assert np.isnan(rw["rank_ic"]) and rw["hit"] == pytest.approx(up)
    stat = t.select("ticker", pl.col("date").alias("origin"), pl.lit("ensemble").alias("model"))
    stat = stat.with_columns(horizon=pl.lit(H), yhat=pl.col("ticker").rank("dense").cast(pl.Float64))
    stat.write_parquet(tmp_path / "stat.parquet")
    got = report.stat_scores(tmp_path / "stat.parquet", H)
    assert got.columns == ["ticker", "date", "score"] and got.height == t.height
