"""Asset ``forecasts/predictions``: every statistical model's forecasts, and the ensemble."""

import datetime as dt

import dagster as dg
import polars as pl
from pydantic import Field

from model_code.forecasting import catalog
from model_code.forecasting.predictions import (
    ensemble_frame,
    fit_log_frame,
    forecast_as_of,
    predictions_frame,
)
from model_code.market_data.calendar import trading_calendar
from pm_assets.market.ohlcv import MAX_PARTITIONS_PER_RUN
from pm_assets.partitions import partition_dates, trading_days
from pm_resources import DUCKDB_POOL, WarehouseResource


class ForecastConfig(dg.Config):
    """Which models run, on how much history, in how many processes."""

    models: list[str] = Field(
        default=list(catalog.ALL_MODELS), description="Forecasters (baselines always run)."
    )
    history: int = Field(default=1000, description="Daily returns each model is fitted on (sessions).")
    min_history: int = Field(default=252, description="Tickers with fewer returns are skipped.")
    workers: int = Field(default=0, description="Worker processes; 0 = all cores.")
    loss_lookback: int = Field(
        default=63, description="Sessions of realized forecasts the ensemble weights use."
    )


@dg.asset(
    key=["forecasts", "predictions"],
    deps=[dg.AssetKey(["market", "ohlcv"]), dg.AssetKey(["features", "targets"])],
    group_name="forecasts",
    kinds={"duckdb", "statsforecast", "arch", "numpy"},
    owners=["team:research"],
    partitions_def=trading_days,
    # Same policy as the assets it runs with in nightly_job (Dagster wants one per job); a
    # backfill of nightly forecasts refits every model per as_of, so prefer the walk-forward
    # evaluation for history.
    backfill_policy=dg.BackfillPolicy.multi_run(max_partitions_per_run=MAX_PARTITIONS_PER_RUN),
    pool=DUCKDB_POOL,
)
def predictions(
    context: dg.AssetExecutionContext, config: ForecastConfig, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """Forecasts of the cumulative log return over 1/5/21/63 sessions with 80/95 % intervals
    from the random walk, drift, ARIMA, GARCH-family, SAMOSSA and MSSA-RL models, plus a
    performance-weighted ensemble, in ``forecasts.predictions``; each fit's outcome in ``forecasts.fit_log``.

    Each as_of uses bars dated <= as_of only. Tickers are fitted in parallel worker
    processes; MSSA-RL is fitted once on the date-aligned universe. A failing model or ticker is
    logged with its error and the rest go on.
    """
    start, end = partition_dates(context)
    models = catalog.select(config.models)
    panel_models = catalog.select_panel(config.models)
    sessions = [dt.date.fromisoformat(str(d)) for d in trading_calendar().sessions_in_range(start, end)]
    totals = {"rows": 0, "tickers": 0, "failed_fits": 0, "fit_seconds": 0.0}
    with warehouse.open() as wh:
        bars = wh.query("@ohlcv_history_until", [end])
        for as_of in sessions:
            results, dates = forecast_as_of(
                bars,
                as_of,
                models,
                history=config.history,
                min_history=config.min_history,
                workers=config.workers or None,
                panel_models=panel_models,
            )
            preds = predictions_frame(results, as_of, dates)
            since = trading_calendar().sessions_in_range(
                as_of - dt.timedelta(days=2 * config.loss_lookback), as_of
            )
            losses = wh.query(
                "@forecast_losses",
                [as_of, dt.date.fromisoformat(str(since[max(0, len(since) - config.loss_lookback)]))],
            )
            ensemble, weights = ensemble_frame(preds, losses)
            log = fit_log_frame(results, as_of)
            with wh.transaction():
                wh.upsert(
                    "forecasts.predictions",
                    pl.concat([preds, ensemble]),
                    ["as_of", "ticker", "model", "horizon"],
                )
                wh.upsert("forecasts.fit_log", log, ["as_of", "ticker", "model"])
                wh.upsert(
                    "forecasts.ensemble_weights",
                    weights.with_columns(as_of=pl.lit(as_of)),
                    ["as_of", "horizon", "model"],
                )
            totals["rows"] += preds.height + ensemble.height
            totals["tickers"] = max(totals["tickers"], len(results))
            totals["failed_fits"] += int((log["status"] == "failed").sum())
            totals["fit_seconds"] += float(log["fit_seconds"].fill_null(0).sum())
            context.log.info(
                "forecasts %s: %d tickers, %d rows, %d failed fits",
                as_of,
                len(results),
                preds.height + ensemble.height,
                int((log["status"] == "failed").sum()),
            )
    return dg.MaterializeResult(
        metadata={
            "rows_written": dg.MetadataValue.float(float(totals["rows"])),
            "tickers": dg.MetadataValue.float(float(totals["tickers"])),
            "failed_fits": dg.MetadataValue.float(float(totals["failed_fits"])),
            "fit_seconds_total": dg.MetadataValue.float(totals["fit_seconds"]),
            "as_of_sessions": dg.MetadataValue.float(float(len(sessions))),
        }
    )
