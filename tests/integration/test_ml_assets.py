"""``ml/model`` and ``ml/predictions`` over synthetic features and targets in a temporary DuckDB."""

import datetime as dt
import json

import dagster as dg
import duckdb
import numpy as np
import polars as pl
import pytest

from model_code.features import build_daily_features, build_targets
from model_code.features.synthetic import synthetic_bars
from model_code.forecasting.base import HORIZONS as ALL_HORIZONS
from model_code.market_data.calendar import trading_calendar
from model_code.ml.models import LGBM_DEFAULTS
from model_code.warehouse import Warehouse, apply_ddl
from pm_assets.ml import ml_assets
from pm_assets.ml.model import MlTrainingConfig
from pm_assets.ml.predictions import MlPredictionConfig
from pm_resources import WarehouseResource
from tests.ml_cases import with_skill

HORIZONS = [1, 5]
TRAIN = {
    "horizons": HORIZONS,
    "train_years": 0.75,
    "valid_months": 3,
    "n_estimators": 40,
    "min_child_samples": 20,
    "threads": 1,
    "importance_repeats": 2,
}
MODEL = dg.AssetKey(["ml", "model"])
PREDICTIONS = dg.AssetKey(["ml", "predictions"])
STAMP = dt.datetime(2024, 1, 1)


@pytest.fixture(scope="module")
def bars() -> pl.DataFrame:
    return synthetic_bars(24, 420, seed=7, gap_fraction=0.01, close_only=1)


def _sessions(bars: pl.DataFrame) -> list[dt.date]:
    return bars["date"].unique().sort().to_list()


def _seed(db, bars: pl.DataFrame, *, skill: bool = False) -> None:
    """features.daily and features.targets built from ``bars`` (all that the ML assets read);
    with ``skill``, two features foretell the 1- and 5-session returns (a look-ahead by
    construction: a model that beats the random walk, for tests that need a champion)."""
    conn = duckdb.connect(str(db))
    apply_ddl(conn)
    wh = Warehouse(conn)
    stamp = pl.lit(STAMP).alias("computed_at")
    features, targets = build_daily_features(bars), build_targets(bars)
    if skill:
        features = with_skill(features, targets)
    wh.upsert("features.daily", features.with_columns(stamp), ["ticker", "date"])
    wh.upsert("features.targets", targets.with_columns(stamp), ["ticker", "date"])
    conn.close()


def _train(db, **config):
    result = dg.materialize(
        ml_assets,
        resources={"warehouse": WarehouseResource(database=str(db))},
        selection=[MODEL],
        run_config={"ops": {"ml__model": {"config": {**TRAIN, **config}}}},
    )
    assert result.success
    return result.asset_materializations_for_node("ml__model")[0].metadata


def _predict(db, key: dt.date):
    result = dg.materialize(
        ml_assets,
        resources={"warehouse": WarehouseResource(database=str(db))},
        selection=[PREDICTIONS],
        partition_key=key.isoformat(),
        run_config={"ops": {"ml__predictions": {"config": {"horizons": HORIZONS}}}},
    )
    assert result.success
    return result.asset_materializations_for_node("ml__predictions")[0].metadata


def _q(db, sql: str) -> pl.DataFrame:
    with duckdb.connect(str(db), read_only=True) as conn:
        return conn.sql(sql).pl()


def _x(db, sql: str) -> None:
    with duckdb.connect(str(db)) as conn:
        conn.execute(sql).fetchall()


def test_config_defaults_are_the_domain_defaults():
    train = MlTrainingConfig()
    assert train.horizons == MlPredictionConfig().horizons == list(ALL_HORIZONS)
    for name in ("n_estimators", "learning_rate", "num_leaves", "min_child_samples"):
        assert getattr(train, name) == LGBM_DEFAULTS[name], name


def test_without_skill_nothing_beats_the_random_walk_and_ml_abstains(tmp_path, bars, isolated_pm_home):
    db = tmp_path / "wh.duckdb"
    _seed(db, bars)
    meta = _train(db)
    reg = _q(db, "SELECT * FROM models.registry ORDER BY horizon")
    assert reg["horizon"].to_list() == HORIZONS and set(reg["status"]) == {"challenger"}
    decisions = _q(db, "SELECT * FROM models.decisions ORDER BY horizon")
    assert decisions["action"].to_list() == ["abstain", "abstain"]
    assert decisions["subject"].to_list() == reg["model_id"].to_list()
    assert set(decisions["rival"]) == {"random_walk"}
    assert meta["horizons_promoted"].value == 0.0 and meta["horizons_abstaining"].value == 2.0
    for h in HORIZONS:
        assert meta[f"status_h{h}"].value.startswith("challenger: no earlier champion; ")
        assert meta[f"decision_h{h}"].value.startswith("abstain: ")
        assert 0.0 <= meta[f"dm_p_h{h}"].value <= 1.0
    assert "| abstain |" in meta["decisions"].value
    # The nightly scoring then has nothing to score, and says why.
    predicted = _predict(db, _sessions(bars)[-1])
    assert predicted["rows_written"].value == 0.0 and "lgbm h=1" in predicted["no_champion"].value
    assert "governance abstain" in predicted["no_champion_reasons"].value


def test_model_is_trained_registered_with_importance_and_promoted_by_governance(
    tmp_path, bars, isolated_pm_home
):
    db = tmp_path / "wh.duckdb"
    _seed(db, bars, skill=True)
    meta = _train(db)
    reg = _q(db, "SELECT * FROM models.registry ORDER BY horizon")
    assert reg["horizon"].to_list() == HORIZONS and set(reg["status"]) == {"champion"}
    assert set(reg["family"]) == {"lgbm_regressor"}
    for row in reg.iter_rows(named=True):
        h, model_id = row["horizon"], row["model_id"]
        artifact = isolated_pm_home.resolve() / "models" / model_id
        assert row["artifact_path"] == str(artifact)
        assert (artifact / "model.txt").is_file() and (artifact / "forecaster.json").is_file()
        assert (artifact / "track_record.parquet").is_file()
        cv = json.loads(row["cv_metrics"])
        assert cv["rank_ic"] == pytest.approx(meta[f"valid_rank_ic_h{h}"].value)
        assert cv["cal_slope"] >= 0 and dt.date.fromisoformat(cv["data_end"]) == _sessions(bars)[-1]
        assert row["expires_at"] - row["trained_at"] == dt.timedelta(days=30)
        assert meta[f"model_id_h{h}"].value == model_id
        assert meta[f"status_h{h}"].value.startswith("champion: no earlier champion; loss lower")
        assert meta[f"dm_p_h{h}"].value < 0.05 and meta[f"dsr_h{h}"].value >= 0.95
        for name in ("valid_ic", "valid_rank_ic", "valid_hit_rate", "oof_rank_ic"):
            assert isinstance(meta[f"{name}_h{h}"].value, float)
    imp = _q(db, "SELECT model_id, count(*) n, sum(gain) g FROM models.feature_importance GROUP BY ALL")
    assert imp.height == 2 and set(imp["n"]) == {15}
    assert np.allclose(imp["g"].to_numpy(), 1.0)
    assert "| feature | gain | permutation |" in meta["feature_importance"].value
    assert "| promote |" in meta["decisions"].value

    # Same data, same configuration: a retrain of the champion's configuration, which must clear
    # the random walk again; it does, so the newer model takes over and the old one is retired.
    meta2 = _train(db)
    reg = _q(db, "SELECT model_id, horizon, status FROM models.registry")
    assert reg.height == 4
    champions = reg.filter(pl.col("status") == "champion")
    assert set(champions["model_id"]) == {meta2[f"model_id_h{h}"].value for h in HORIZONS}
    assert reg.filter(pl.col("status") == "retired").height == 2
    assert "retrain of champion" in meta2["status_h1"].value
    assert _q(db, "SELECT count(*) n FROM models.decisions")["n"][0] == 4

    # Another configuration on the same data is gated against the champion's stored record, on
    # their common dates: not enough uplift over it, so it is refused and the champion stays.
    meta3 = _train(db, num_leaves=7)
    assert meta3["decision_h1"].value.startswith("refuse: ") and meta3["status_h1"].value.startswith(
        "challenger"
    )
    rivals = _q(db, "SELECT rival FROM models.decisions WHERE action = 'refuse' AND horizon = 1")["rival"]
    assert rivals.to_list() == [meta2["model_id_h1"].value]
    status = dict(_q(db, "SELECT model_id, status FROM models.registry").rows())
    assert status[meta3["model_id_h1"].value] == "challenger"
    assert status[meta2["model_id_h1"].value] == "champion"
    assert meta3["horizons_promoted"].value == 0.0

    # An expired champion is no incumbent: the new model faces the random walk.
    _x(db, "UPDATE models.registry SET expires_at = TIMESTAMP '2020-01-01' WHERE status = 'champion'")
    meta4 = _train(db)
    assert meta4["status_h1"].value.startswith("champion: champion") and "expired" in meta4["status_h1"].value


def test_predictions_have_the_forecast_columns_are_idempotent_and_refuse_expired_models(tmp_path, bars):
    db = tmp_path / "wh.duckdb"
    _seed(db, bars, skill=True)
    last = _sessions(bars)[-1]
    untrained = _predict(db, last)  # the nightly job before any training: nothing, and no failure
    assert untrained["rows_written"].value == 0.0 and "lgbm h=1" in untrained["no_champion"].value
    _train(db)
    meta = _predict(db, last)
    cols = "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = 'forecasts' "
    order = " ORDER BY ordinal_position"
    assert (
        _q(db, cols + "AND table_name = 'ml_predictions'" + order).rows()
        == _q(db, cols + "AND table_name = 'predictions'" + order).rows()
    )
    rows = _q(db, "SELECT * FROM forecasts.ml_predictions ORDER BY ticker, horizon")
    tickers = _q(db, f"SELECT count(*) n FROM features.daily WHERE date = DATE '{last}'")["n"][0]
    assert rows.height == tickers * len(HORIZONS) == meta["rows_written"].value
    assert set(rows["model"]) == {"lgbm"} and set(rows["as_of"]) == {last}
    assert rows["fit_seconds"].null_count() == rows.height
    ahead = trading_calendar().sessions_in_range(last + dt.timedelta(days=1), last + dt.timedelta(days=20))
    assert set(rows.filter(pl.col("horizon") == 1)["target_date"]) == {dt.date.fromisoformat(str(ahead[0]))}
    assert set(rows.filter(pl.col("horizon") == 5)["target_date"]) == {dt.date.fromisoformat(str(ahead[4]))}
    ordered = ["lower_95", "lower_80", "yhat", "upper_80", "upper_95"]
    for lo, hi in zip(ordered, ordered[1:], strict=False):
        assert (rows[lo] <= rows[hi]).all(), (lo, hi)
    assert (rows["vol_forecast"] > 0).all()
    assert meta["expired_horizons"].value == "none" and meta["horizons_scored"].value == 2.0
    assert "bayesian_ridge h=1" in meta["no_champion"].value

    again = _predict(db, last)
    assert again["rows_written"].value == meta["rows_written"].value
    assert _q(db, "SELECT * FROM forecasts.ml_predictions ORDER BY ticker, horizon").equals(rows)

    # Before the model's last training label closed, a forecast would look ahead: refused.
    early = _predict(db, _sessions(bars)[-30])
    assert early["rows_written"].value == 0.0 and early["not_point_in_time"].value == "lgbm h=1, lgbm h=5"

    # Past its expiry the champion is refused: no rows, and the metadata says why.
    _x(db, "DELETE FROM forecasts.ml_predictions")
    _x(db, f"UPDATE models.registry SET expires_at = TIMESTAMP '{last - dt.timedelta(days=1)} 00:00:00'")
    expired = _predict(db, last)
    assert expired["rows_written"].value == 0.0
    assert expired["expired_horizons"].value == "lgbm h=1, lgbm h=5"
    assert expired["expired_count"].value == 2.0
    assert "expired at" in expired["expiry_messages"].value and "Retrain" in expired["expiry_messages"].value
    assert _q(db, "SELECT count(*) n FROM forecasts.ml_predictions")["n"][0] == 0


def test_predictions_for_t_are_unchanged_when_data_after_t_is_removed(tmp_path):
    # Persistent returns (AR(1), phi 0.5) give the models point-in-time skill to earn champions.
    bars = synthetic_bars(24, 420, seed=7, gap_fraction=0.01, close_only=1, phi=0.5)
    sessions = _sessions(bars)
    t0, t = sessions[-60], sessions[-40]  # train on what was known at t0, forecast at t
    full, cut = tmp_path / "full.duckdb", tmp_path / "cut.duckdb"
    _seed(full, bars)
    _seed(cut, bars.filter(pl.col("date") <= t))  # features and targets rebuilt without the future
    for db in (full, cut):
        meta = _train(db, until=t0.isoformat())
        assert meta["horizons_promoted"].value == 2.0
        assert _predict(db, t)["rows_written"].value > 0
    decisions = (
        "SELECT horizon, action, json_extract(evidence, '$.dm_p_one_sided')::DOUBLE AS p, "
        "json_extract(evidence, '$.dsr')::DOUBLE AS dsr FROM models.decisions ORDER BY horizon"
    )
    assert _q(full, decisions).equals(_q(cut, decisions))  # governance saw the same past
    sql = "SELECT * FROM forecasts.ml_predictions ORDER BY ticker, horizon"
    a, b = _q(full, sql), _q(cut, sql)
    assert a.height == b.height > 0 and set(a["as_of"]) == {t}
    assert a.equals(b)
