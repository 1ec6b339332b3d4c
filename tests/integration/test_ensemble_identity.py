"""The nightly ensemble is the walk-forward's ensemble: one realized-loss rule serves both.

The same bars (with a one-day gap in one ticker, so a forecast's realized date can differ from
its target date) go through the nightly ``forecasts/predictions`` asset, run as two backfill
chunks, and through ``run_walk_forward`` at the same daily origins under the same policy (the
production one: stored fits applied with fixed estimates, fitted on first sight, refitted past
their maximum age); the ensemble forecasts and weights must be identical. The second chunk reads
the first chunk's fits back from ``models.fits``, so storage is part of the identity.
"""

import datetime as dt

import dagster as dg
import duckdb
import polars as pl
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from model_code.evaluation import run_walk_forward
from model_code.features import build_targets
from model_code.forecasting import catalog
from model_code.forecasting.ensemble import ensemble_weights
from model_code.forecasting.losses import realized_losses
from model_code.market_data.ingestion import ingest_window
from model_code.market_data.sources.registry import SourceSettings, build_chain
from model_code.warehouse import Warehouse, apply_ddl
from pm_assets.forecasts import predictions
from pm_resources import WarehouseResource

TICKERS = ["AAPL", "MSFT", "^GSPC"]
MODELS = ["arima"]
GAP = dt.date(2019, 1, 15)  # MSFT has no bar that day: its 1-day target from 01-14 closes on 01-16
CHUNKS = [("2019-01-02", "2019-01-14"), ("2019-01-15", "2019-02-01")]
FORECAST_COLUMNS = [
    "ticker",
    "horizon",
    "target_date",
    "yhat",
    "lower_80",
    "upper_80",
    "lower_95",
    "upper_95",
]


def _seed(db) -> pl.DataFrame:
    conn = duckdb.connect(str(db))
    apply_ddl(conn)
    wh = Warehouse(conn)
    ingest_window(
        wh, build_chain(["bundled"], SourceSettings()), TICKERS, dt.date(2015, 6, 1), dt.date(2019, 3, 29)
    )
    wh.execute("DELETE FROM market.ohlcv WHERE ticker = 'MSFT' AND date = ?", [GAP])
    bars = wh.query("@ohlcv_history_until", [dt.date(2019, 3, 29)])
    wh.upsert(
        "features.targets",
        build_targets(bars).with_columns(computed_at=pl.lit(dt.datetime(2024, 1, 1))),
        ["ticker", "date"],
    )
    conn.close()
    return bars


def _nightly(db) -> None:
    config = {"ops": {"forecasts__predictions": {"config": {"models": MODELS, "workers": 1}}}}
    for start, end in CHUNKS:
        result = dg.materialize(
            [predictions],
            resources={"warehouse": WarehouseResource(database=str(db))},
            tags={ASSET_PARTITION_RANGE_START_TAG: start, ASSET_PARTITION_RANGE_END_TAG: end},
            run_config=config,
        )
        assert result.success


def _q(db, sql) -> pl.DataFrame:
    with duckdb.connect(str(db), read_only=True) as conn:
        return conn.sql(sql).pl()


def test_nightly_and_walk_forward_ensembles_are_identical(tmp_path):
    db = tmp_path / "warehouse.duckdb"
    bars = _seed(db)
    _nightly(db)
    origins = sorted(_q(db, "SELECT DISTINCT as_of FROM forecasts.predictions")["as_of"])
    assert len(origins) == 22 and GAP in origins
    walk = run_walk_forward(
        bars, catalog.select(MODELS), origins, workers=1, policy="stored", refit_every=None
    )
    # The nightly runs really applied stored fits (fitted once, on the first session, then updated).
    log = _q(db, "SELECT as_of, params FROM forecasts.fit_log WHERE model = 'arima'")
    used = log.filter(pl.col("params").str.contains('"stored_fit": true'))
    n_fits = _q(db, "SELECT count(*) n FROM models.fits WHERE model = 'arima'")["n"][0]
    assert log.height - used.height == n_fits >= 1 and used.height >= 20 * n_fits
    assert used["as_of"].min() > origins[0]

    nightly_ens = _q(db, "SELECT * FROM forecasts.predictions WHERE model = 'ensemble'")
    for origin in origins:
        mine = (
            nightly_ens.filter(pl.col("as_of") == origin).select(FORECAST_COLUMNS).sort("ticker", "horizon")
        )
        theirs = (
            walk.filter((pl.col("origin") == origin) & (pl.col("model") == "ensemble"))
            .select(FORECAST_COLUMNS)
            .sort("ticker", "horizon")
        )
        assert mine.height == theirs.height > 0, origin
        for col in FORECAST_COLUMNS[3:]:
            diff = (mine[col] - theirs[col]).abs().max()
            assert diff < 1e-12, f"{origin} {col}: nightly and walk-forward ensembles differ by {diff}"

    # The stored weights are the walk-forward's at every origin, horizon and model.
    stored = _q(db, "SELECT as_of, horizon, model, weight, mse FROM forecasts.ensemble_weights")
    realized_somewhere = 0
    for origin in origins:
        losses = realized_losses(walk, origin)
        for h in (1, 5):
            known = {m: mse for m, hh, mse, _ in losses.iter_rows() if hh == h}
            got = stored.filter((pl.col("as_of") == origin) & (pl.col("horizon") == h))
            if not known:
                assert got["mse"].null_count() == got.height
                continue
            realized_somewhere += 1
            want = ensemble_weights(known)
            for model, weight, mse in got.select("model", "weight", "mse").iter_rows():
                assert abs(weight - want[model]) < 1e-12 and abs(mse - known[model]) < 1e-15

    assert realized_somewhere > 20
    # The gap matters: counting MSFT's 01-14 forecast, realized on 01-16 instead of its target
    # 01-15 (the old nightly SQL did), would give other losses at 01-16.
    last = dt.date(2019, 1, 16)
    careless = (
        walk.filter((pl.col("origin") < last) & (pl.col("model") != "ensemble") & (pl.col("horizon") == 1))
        .join(
            build_targets(bars).select(
                "ticker", pl.col("date").alias("origin"), "target_date_1", pl.col("fwd_ret_1").alias("loose")
            ),
            on=["ticker", "origin"],
        )
        .filter(pl.col("target_date_1") <= last)
        .group_by("model")
        .agg(((pl.col("yhat") - pl.col("loose")) ** 2).mean().alias("mse"))
    )
    strict = stored.filter((pl.col("as_of") == last) & (pl.col("horizon") == 1))
    merged = strict.join(careless, on="model", suffix="_careless")
    assert merged.height == 3 and (merged["mse"] - merged["mse_careless"]).abs().max() > 1e-9
