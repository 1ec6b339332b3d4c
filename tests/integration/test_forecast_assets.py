"""``forecasts/predictions`` over bundled bars seeded straight into a temporary DuckDB."""

import datetime as dt

import dagster as dg
import duckdb
import polars as pl

from model_code.features import build_targets
from model_code.market_data.ingestion import ingest_window
from model_code.market_data.sources.registry import SourceSettings, build_chain
from model_code.warehouse import Warehouse, apply_ddl
from pm_assets.forecasts import accuracy, fits, predictions
from pm_resources import WarehouseResource

TICKERS = ["AAPL", "MSFT", "^GSPC"]
CONFIG = {"ops": {"forecasts__predictions": {"config": {"models": ["arima", "garch"], "workers": 2}}}}


def _seed(db, until: dt.date) -> None:
    conn = duckdb.connect(str(db))
    apply_ddl(conn)
    wh = Warehouse(conn)
    ingest_window(wh, build_chain(["bundled"], SourceSettings()), TICKERS, dt.date(2016, 1, 4), until)
    bars = wh.query("@ohlcv_history_until", [until])
    wh.upsert(
        "features.targets",
        build_targets(bars).with_columns(computed_at=pl.lit(dt.datetime(2024, 1, 1))),
        ["ticker", "date"],
        keep_known=True,
    )
    conn.close()


def _run(db, key):
    result = dg.materialize(
        [predictions, accuracy],
        resources={"warehouse": WarehouseResource(database=str(db))},
        partition_key=key,
        run_config=CONFIG,
    )
    assert result.success
    return result


def _q(db, sql):
    with duckdb.connect(str(db), read_only=True) as conn:
        return conn.sql(sql).pl()


def test_predictions_fit_log_and_ensemble_weights_from_realized_losses(tmp_path):
    db = tmp_path / "wh.duckdb"
    _seed(db, dt.date(2018, 12, 31))
    first = _run(db, "2018-12-20")
    meta = first.asset_materializations_for_node("forecasts__predictions")[0].metadata
    assert meta["tickers"].value == 3.0 and meta["failed_fits"].value == 0.0
    assert {c.name for c in meta["latest_forecasts"].schema.columns} >= {
        "ticker",
        "model",
        "yhat",
        "lower_95",
    }
    assert sum(k.startswith("bands_") for k in meta) == 3
    assert all(v.value.startswith("![") for k, v in meta.items() if k.startswith("bands_"))
    preds = _q(db, "SELECT * FROM forecasts.predictions WHERE as_of = DATE '2018-12-20'")
    assert preds.height == 3 * 5 * 4  # tickers x (4 models + ensemble) x horizons
    assert set(preds["model"]) == {"random_walk", "drift", "arima", "garch", "ensemble"}
    assert (preds["lower_95"] <= preds["lower_80"]).all() and (preds["upper_80"] <= preds["upper_95"]).all()
    assert _q(db, "SELECT DISTINCT target_date FROM forecasts.predictions WHERE horizon = 1")[
        "target_date"
    ].to_list() == [dt.date(2018, 12, 21)]
    # First as_of: no realized forecasts yet -> equal weights, recorded with NULL mse.
    w = _q(db, "SELECT * FROM forecasts.ensemble_weights WHERE as_of = DATE '2018-12-20' AND horizon = 1")
    assert w["mse"].null_count() == w.height and set(w["weight"].round(12)) == {0.25}

    # Four sessions later the 1-day forecasts of 12-20 have closed: weights come from their MSE.
    _run(db, "2018-12-27")
    w = _q(
        db,
        "SELECT model, weight, mse FROM forecasts.ensemble_weights WHERE as_of = DATE '2018-12-27' AND horizon = 1",
    )
    assert w["mse"].null_count() == 0 and abs(w["weight"].sum() - 1) < 1e-9
    best = w.sort("mse")["model"][0]
    assert w.filter(pl.col("model") == best)["weight"][0] == w["weight"].max()
    # 63-day forecasts cannot have closed: still equal weights there.
    w63 = _q(
        db, "SELECT mse FROM forecasts.ensemble_weights WHERE as_of = DATE '2018-12-27' AND horizon = 63"
    )
    assert w63["mse"].null_count() == w63.height
    log = _q(db, "SELECT status, count(*) n FROM forecasts.fit_log GROUP BY status")
    assert log.rows() == [("ok", 2 * 3 * 4)]

    # Accuracy: the realized 1-day forecasts of both as_of dates are scored, pooled and per ticker.
    result = dg.materialize(
        [predictions, accuracy],
        resources={"warehouse": WarehouseResource(database=str(db))},
        selection=[dg.AssetKey(["forecasts", "accuracy"])],
    )
    assert result.success
    acc = _q(db, "SELECT * FROM forecasts.accuracy WHERE horizon = 1 AND ticker = '*' ORDER BY model")
    assert set(acc["model"]) == {"random_walk", "drift", "arima", "garch", "ensemble"}
    assert set(acc["n"]) == {6} and acc["evaluated_through"][0] == dt.date(2018, 12, 31)
    assert acc.filter(pl.col("model") == "random_walk")["rmse_ratio"][0] == 1.0
    acc_meta = result.asset_materializations_for_node("forecasts__accuracy")[0].metadata
    assert {c.name for c in acc_meta["pooled_accuracy"].schema.columns} >= {"model", "rmse_ratio", "dm_p"}
    assert acc_meta["accuracy_plot"].value.startswith("![accuracy over time](data:image/png;base64,")
    per_ticker = _q(db, "SELECT count(*) n FROM forecasts.accuracy WHERE horizon = 1 AND ticker <> '*'")["n"][
        0
    ]
    assert per_ticker == 5 * 3
    # 63-day forecasts have not closed: nothing scored for them.
    assert _q(db, "SELECT count(*) n FROM forecasts.accuracy WHERE horizon = 63")["n"][0] == 0


def _fits(db, models):
    config = {"ops": {"forecasts__fits": {"config": {"models": models, "workers": 2}}}}
    result = dg.materialize(
        [fits], resources={"warehouse": WarehouseResource(database=str(db))}, run_config=config
    )
    assert result.success
    return result.asset_materializations_for_node("forecasts__fits")[0].metadata


def _predict(db, key, stored):
    models = ["arima", "samossa", "garch", "mssa_rl"]
    config = {"models": models, "workers": 2, "stored_fits": stored}
    result = dg.materialize(
        [predictions],
        resources={"warehouse": WarehouseResource(database=str(db))},
        partition_key=key,
        run_config={"ops": {"forecasts__predictions": {"config": config}}},
    )
    assert result.success
    cols = "ticker, model, horizon, yhat, lower_80, upper_80, lower_95, upper_95, vol_forecast"
    return _q(db, f"SELECT {cols} FROM forecasts.predictions WHERE as_of = DATE '{key}' ORDER BY ALL")


def test_fits_are_refitted_as_requested_and_predictions_apply_them_exactly(tmp_path, isolated_pm_home):
    db = tmp_path / "wh.duckdb"
    _seed(db, dt.date(2018, 12, 31))
    # The decay sensor's request: exactly these models and tickers, nothing else.
    meta = _fits(db, {"arima": ["AAPL"], "samossa": ["MSFT"]})
    rows = _q(db, "SELECT ticker, model, window_end, artifact_path FROM models.fits ORDER BY model")
    assert rows.select("ticker", "model").rows() == [("AAPL", "arima"), ("MSFT", "samossa")]
    assert set(rows["window_end"]) == {dt.date(2018, 12, 31)} and meta["fits_written"].value == 2.0
    arima_row, samossa_row = rows.row(0, named=True), rows.row(1, named=True)
    assert arima_row["artifact_path"] is None  # small state: all in the params JSON
    folder = isolated_pm_home / samossa_row["artifact_path"]
    assert (folder / "meta.json").is_file() and (folder / "arrays.npz").is_file()

    # The weekly run (empty config): every (ticker, model) without a fit at least 5 sessions old.
    meta = _fits(db, {})
    n = _q(db, "SELECT count(*) n FROM models.fits")["n"][0]
    assert meta["fits_written"].value == n - 2 and n == 3 * 8  # 3 tickers x 8 models
    # Nothing is due right after: a second weekly run refits nothing.
    assert _fits(db, {})["fits_written"].value == 0.0

    # On the fits' own day, forecasts from the stored fits are exactly a full refit's.
    stored = _predict(db, "2018-12-31", stored=True)
    log = _q(db, "SELECT params FROM forecasts.fit_log WHERE as_of = DATE '2018-12-31'")
    assert log.height == 3 * 6 and log["params"].str.contains('"stored_fit": true').all()
    refit = _predict(db, "2018-12-31", stored=False)
    assert stored.height == refit.height == 3 * 7 * 4
    assert stored.equals(refit)

    # An earlier session cannot use fits whose window ends after it: fitted on first sight.
    _predict(db, "2018-12-20", stored=True)
    early = _q(db, "SELECT DISTINCT window_end FROM models.fits WHERE window_end < DATE '2018-12-31'")
    assert early["window_end"].to_list() == [dt.date(2018, 12, 20)]
