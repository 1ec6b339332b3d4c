"""``forecasts/predictions`` over bundled bars seeded straight into a temporary DuckDB."""

import datetime as dt

import dagster as dg
import duckdb
import polars as pl

from model_code.features import build_targets
from model_code.market_data.ingestion import ingest_window
from model_code.market_data.sources.registry import SourceSettings, build_chain
from model_code.warehouse import Warehouse, apply_ddl
from pm_assets.forecasts import forecast_assets
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
        forecast_assets,
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
        forecast_assets,
        resources={"warehouse": WarehouseResource(database=str(db))},
        selection=[dg.AssetKey(["forecasts", "accuracy"])],
    )
    assert result.success
    acc = _q(db, "SELECT * FROM forecasts.accuracy WHERE horizon = 1 AND ticker = '*' ORDER BY model")
    assert set(acc["model"]) == {"random_walk", "drift", "arima", "garch", "ensemble"}
    assert set(acc["n"]) == {6} and acc["evaluated_through"][0] == dt.date(2018, 12, 31)
    assert acc.filter(pl.col("model") == "random_walk")["rmse_ratio"][0] == 1.0
    per_ticker = _q(db, "SELECT count(*) n FROM forecasts.accuracy WHERE horizon = 1 AND ticker <> '*'")["n"][
        0
    ]
    assert per_ticker == 5 * 3
    # 63-day forecasts have not closed: nothing scored for them.
    assert _q(db, "SELECT count(*) n FROM forecasts.accuracy WHERE horizon = 63")["n"][0] == 0
