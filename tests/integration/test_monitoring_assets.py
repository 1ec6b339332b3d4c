"""monitoring/model_health and monitoring/freshness over a seeded DuckDB, materialized by Dagster."""

import datetime as dt

import dagster as dg
import duckdb
import polars as pl

from model_code.warehouse import Warehouse, apply_ddl
from pm_assets.monitoring import monitoring_assets
from pm_resources import WarehouseResource
from tests import monitoring_cases as cases

SESSIONS = cases.SESSIONS
TICKERS = ["AAA", "BBB"]


def seed(db, rules=None, stale_ticker="CCC") -> None:
    """Targets for AAA and BBB, the random walk and arima (wrong way on AAA by default), bars
    for all three tickers (``stale_ticker``'s end 20 sessions early) and one ML champion."""
    rules = rules or {("arima", "AAA"): -1.0, ("arima", "BBB"): 0.5}
    targets = cases.targets(TICKERS)
    preds = pl.concat([cases.random_walk(targets, TICKERS), cases.forecasts(targets, rules)])
    conn = duckdb.connect(str(db))
    apply_ddl(conn)
    wh = Warehouse(conn)
    stamp = dt.datetime(2024, 1, 1)
    wh.upsert("features.targets", targets.with_columns(computed_at=pl.lit(stamp)), ["ticker", "date"])
    wh.upsert(
        "forecasts.predictions",
        preds.rename({"origin": "as_of"}).drop("family"),
        ["as_of", "ticker", "model", "horizon"],
    )
    tickers = [*TICKERS, stale_ticker]
    wh.upsert(
        "market.universe",
        pl.DataFrame({"ticker": tickers, "active": [True] * 3, "updated_at": [stamp] * 3}),
        ["ticker"],
    )
    bars = pl.DataFrame(
        [
            (t, d, 10.0, "test", stamp)
            for t in tickers
            for d in (SESSIONS[:-20] if t == stale_ticker else SESSIONS)
        ],
        schema=["ticker", "date", "close", "source", "ingested_at"],
        orient="row",
    )
    wh.upsert("market.ohlcv", bars, ["ticker", "date"])
    conn.execute(
        "INSERT INTO models.registry VALUES ('m1', 'lgbm_regressor', 5, TIMESTAMP '2019-06-01 06:00', "
        "DATE '2016-01-04', DATE '2019-05-24', '{}', NULL, 'h', '[]', 'p', 'champion', NULL)"
    )
    conn.close()


def materialize(db, key, instance=None, assets=monitoring_assets):
    result = dg.materialize(
        assets,
        resources={"warehouse": WarehouseResource(database=str(db))},
        partition_key=key,
        instance=instance,
    )
    assert result.success
    return result


def q(db, sql):
    with duckdb.connect(str(db), read_only=True) as conn:
        return conn.sql(sql).pl()


def test_model_health_lists_the_decayed_pair_warns_and_asks_for_its_refit_once(tmp_path):
    db = tmp_path / "wh.duckdb"
    seed(db)
    first = materialize(db, SESSIONS[-2].isoformat())
    meta = first.asset_materializations_for_node("monitoring__model_health")[0].metadata
    assert meta["refit_request"].value == {"statistical": {"arima": ["AAA"]}}
    assert [(p["model"], p["ticker"], p["horizon"]) for p in meta["decayed_pairs"].value] == [
        ("arima", "AAA", 1)
    ]
    assert "| statistical | arima | AAA | 1 |" in meta["decayed_table"].value
    assert {c.name for c in meta["pooled_latest"].schema.columns} >= {"model", "horizon", "rmse_ratio"}
    assert meta["decayed_pairs_arima"].value == 1.0 and meta["hit_rate_arima_h1"].value > 0.45
    assert isinstance(meta["rmse_ratio_arima_h1"], dg.FloatMetadataValue)
    checks = {c.check_name: c for c in first.get_asset_check_evaluations()}
    assert not checks["statistical_models_decay"].passed
    assert checks["statistical_models_decay"].severity == dg.AssetCheckSeverity.WARN
    assert checks["ml_models_decay"].passed
    stored = q(db, "SELECT * FROM monitoring.model_health WHERE ticker = 'AAA'")
    assert stored.height == 1 and stored["decayed"][0] and stored["crossed"][0]
    # The next night it is still decayed but did not cross again: no new refit request.
    second = materialize(db, SESSIONS[-1].isoformat())
    meta = second.asset_materializations_for_node("monitoring__model_health")[0].metadata
    assert meta["refit_request"].value == {} and meta["decayed_count"].value == 1.0
    crossed = q(db, "SELECT as_of, ticker FROM monitoring.model_health WHERE crossed ORDER BY ALL")
    assert crossed.rows() == [(SESSIONS[-2], "*"), (SESSIONS[-2], "AAA")]  # the pooled row is only shown


def test_freshness_and_age_before_and_after_stored_fits(tmp_path):
    db = tmp_path / "wh.duckdb"
    seed(db)
    night = SESSIONS[-2]  # the last session with forecasts
    meta = (
        materialize(db, night.isoformat())
        .asset_materializations_for_node("monitoring__freshness")[0]
        .metadata
    )
    fresh = q(db, "SELECT ticker, sessions_behind, stale FROM monitoring.freshness ORDER BY ticker")
    assert fresh.rows() == [("AAA", 0, False), ("BBB", 0, False), ("CCC", 19, True)]
    assert meta["stale_tickers"].value == 1.0 and meta["max_sessions_behind"].value == 19.0
    # No fit stored yet (models.fits is empty): every statistical pair says so, without an age.
    assert meta["statistical_fit_source"].value == "models.fits" and "age_sessions_arima" not in meta
    assert set(q(db, "SELECT source FROM monitoring.model_age WHERE family = 'statistical'")["source"]) == {
        "no_stored_fit"
    }
    ml = q(db, "SELECT * FROM monitoring.model_age WHERE family = 'ml'").row(0, named=True)
    assert (ml["model"], ml["horizon"], ml["window_end"]) == ("lgbm", 5, dt.date(2019, 5, 24))
    assert ml["age_sessions"] == 23 and meta["age_sessions_lgbm_h5"].value == 23.0
    # A stored fit of AAA's arima ending four sessions before as_of: that is its age.
    with duckdb.connect(str(db)) as conn:
        conn.execute(
            "INSERT INTO models.fits (ticker, model, fitted_at, window_start, window_end, n_obs, params) "
            "VALUES ('AAA', 'arima', ?, DATE '2015-01-02', ?, 1000, '{}')",
            [dt.datetime(2019, 6, 21, 22), SESSIONS[-6]],
        )
    meta = (
        materialize(db, night.isoformat())
        .asset_materializations_for_node("monitoring__freshness")[0]
        .metadata
    )
    age = q(
        db,
        "SELECT ticker, model, source, age_sessions FROM monitoring.model_age WHERE family = 'statistical' ORDER BY ALL",
    )
    assert ("AAA", "arima", "models.fits", 4) in age.rows() and (
        "BBB",
        "arima",
        "no_stored_fit",
        None,
    ) in age.rows()
    assert meta["statistical_fit_source"].value == "models.fits" and meta["age_sessions_arima"].value == 4.0
