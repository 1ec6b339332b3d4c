"""Asset `forecasts/predictions`: every statistical model's forecasts, and the ensemble."""

import dagster as dg
import polars as pl
from pydantic import Field

from model_code.forecasting import catalog
from model_code.forecasting.sessions import forecast_sessions, loss_window_start
from model_code.forecasting.stored import (
    DEFAULT_MAX_AGE,
    FitStore,
    fits_frame,
    fits_from_frame,
    save_artifacts,
)
from model_code.market_data.calendar import trading_calendar
from model_code.reporting.charts import forecast_bands_png
from model_code.settings import pm_home
from pm_assets.market.ohlcv import MAX_PARTITIONS_PER_RUN
from pm_assets.metadata import image, table
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
    stored_fits: bool = Field(
        default=True,
        description="Apply the stored fits (models.fits) with fixed estimates; False refits every model.",
    )
    max_age: int = Field(
        default=DEFAULT_MAX_AGE, description="Sessions after which a stored fit is refitted before use."
    )


@dg.asset(
    key=["forecasts", "predictions"],
    deps=[
        dg.AssetKey(["market", "ohlcv"]),
        dg.AssetKey(["features", "targets"]),
        dg.AssetKey(["forecasts", "fits"]),
    ],
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
    performance-weighted ensemble, in `forecasts.predictions`; each fit's outcome in `forecasts.fit_log`.

    Each as_of uses bars dated <= as_of only; the ensemble weights come from the realized
    losses of forecasts made in the trailing `loss_lookback` sessions (the walk-forward's
    rule, `model_code/forecasting/losses.py`). Tickers are fitted in parallel worker
    processes with the warehouse closed; MSSA-RL is fitted once on the date-aligned universe.
    A failing model or ticker is logged with its error and the rest go on.

    Stored fits (default): each (ticker, model) applies the latest fit in `models.fits` whose
    window ends on or before as_of to the returns up to as_of, estimates fixed; one without a
    fit, or with one older than `max_age` sessions, is fitted here and the fit stored, unless its
    fitting failed in the last `max_age` sessions (then the next `forecasts/fits` retries it; see
    `model_code/forecasting/stored.py`; `forecasts/fits` refits on schedule or on request).

    Read the metadata: rows, tickers and failed fits (per partition in a ranged run),
    `latest_forecasts` (the last session's rows) and `bands_<ticker>` (a few tickers' 1-session
    forecasts with their 80/95 % bands beside the realized return).
    """
    start, end = partition_dates(context)
    calendar = trading_calendar()
    sessions = calendar.session_dates(start, end)
    since = loss_window_start(start, config.loss_lookback, calendar)
    with warehouse.open() as wh:
        bars = wh.query("@ohlcv_history_until", [end])
        stored = wh.query("@forecast_history", [since, start])
        targets = wh.query("@targets_between", [since, end])
        stored_fits = wh.query("@fits_until", [start, end]) if config.stored_fits else None
        recent_failures = wh.query(
            "@fit_failures_between", [calendar.window_start(start, config.max_age), start]
        )
    # Every fit runs with the file closed, so readers are never locked out meanwhile.
    made = forecast_sessions(
        bars,
        sessions,
        catalog.select(config.models),
        history_forecasts=stored,
        targets=targets,
        loss_lookback=config.loss_lookback,
        history=config.history,
        min_history=config.min_history,
        workers=config.workers or None,
        panel_models=catalog.select_panel(config.models),
        calendar=calendar,
        fits=FitStore(fits_from_frame(stored_fits)) if stored_fits is not None else None,
        max_age=config.max_age,
        home=pm_home(),
        failed=set(recent_failures.iter_rows()),
    )
    new_fits = save_artifacts([f for d in made for f in d.fits], pm_home())
    for day in made:
        context.log.info(
            "forecasts %s: %d tickers, %d rows, %d failed fits",
            day.as_of,
            day.tickers,
            day.predictions.height,
            day.failed_fits,
        )
        if config.stored_fits:
            context.log.info(
                "%s: %d stored fits applied, %d new fits", day.as_of, day.stored_fits_used, len(day.fits)
            )
    with warehouse.open() as wh, wh.transaction():
        for day in made:
            wh.upsert("forecasts.predictions", day.predictions, ["as_of", "ticker", "model", "horizon"])
            wh.upsert("forecasts.fit_log", day.fit_log, ["as_of", "ticker", "model"])
            wh.upsert("forecasts.ensemble_weights", day.weights, ["as_of", "horizon", "model"])
        if new_fits:
            wh.upsert("models.fits", fits_frame(new_fits), ["ticker", "model", "window_end"])
    _per_session(context, made)
    pictures = _pictures(warehouse, end, made, calendar)
    return dg.MaterializeResult(
        metadata={
            **pictures,
            "rows_written": dg.MetadataValue.float(float(sum(d.predictions.height for d in made))),
            "tickers": dg.MetadataValue.float(float(max((d.tickers for d in made), default=0))),
            "failed_fits": dg.MetadataValue.float(float(sum(d.failed_fits for d in made))),
            "fit_seconds_total": dg.MetadataValue.float(
                float(sum(d.fit_log["fit_seconds"].fill_null(0).sum() for d in made))
            ),
            "as_of_sessions": dg.MetadataValue.float(float(len(sessions))),
            "stored_fits_used": dg.MetadataValue.float(float(sum(d.stored_fits_used for d in made))),
            "fits_written": dg.MetadataValue.float(float(len(new_fits))),
        }
    )


BAND_TICKERS = 3  # tickers drawn with their bands
BAND_SESSIONS = 60  # as_of sessions drawn


def _per_session(context: dg.AssetExecutionContext, made) -> None:
    """In a ranged run, each partition's metadata describes its own session."""
    if len(context.partition_keys) < 2:
        return
    for day in made:
        context.add_asset_metadata(
            {
                "rows_written": dg.MetadataValue.float(float(day.predictions.height)),
                "tickers": dg.MetadataValue.float(float(day.tickers)),
                "failed_fits": dg.MetadataValue.float(float(day.failed_fits)),
                "run_partitions": dg.MetadataValue.float(float(len(context.partition_keys))),
            },
            partition_key=day.as_of.isoformat(),
        )


def _pictures(warehouse: WarehouseResource, end, made, calendar) -> dict[str, dg.MetadataValue]:
    """The last session's forecasts as a table, and for a few tickers the 1-session forecasts
    of the last sessions with their 80/95 % bands beside the realized return."""
    latest = made[-1].predictions if made else None
    if latest is None or latest.is_empty():
        return {
            "why_empty": dg.MetadataValue.text(
                "no forecast made: no ticker had enough history (see the run log)"
            )
        }
    out = {"latest_forecasts": table(latest.sort("ticker", "model", "horizon"), limit=30)}
    model = "ensemble" if "ensemble" in set(latest["model"]) else sorted(set(latest["model"]))[0]
    tickers = sorted(set(latest["ticker"]))[:BAND_TICKERS]
    with warehouse.open() as wh:
        history = wh.query(
            "SELECT p.as_of, p.ticker, p.yhat, p.lower_80, p.upper_80, p.lower_95, p.upper_95, "
            "t.fwd_ret_1 AS actual FROM forecasts.predictions p LEFT JOIN features.targets t "
            "ON t.ticker = p.ticker AND t.date = p.as_of "
            "WHERE p.model = ? AND p.horizon = 1 AND list_contains(?, p.ticker) AND p.as_of BETWEEN ? AND ? "
            "ORDER BY p.as_of",
            [model, tickers, calendar.window_start(end, BAND_SESSIONS), end],
        )
    for ticker in tickers:
        own = history.filter(pl.col("ticker") == ticker)
        if own.height:
            out[f"bands_{ticker}"] = image(
                forecast_bands_png(
                    own.drop("ticker", "actual"),
                    own.select("as_of", "actual"),
                    title=f"{ticker}: {model} 1-session forecast, 80/95 % bands, and the actual",
                ),
                f"{ticker} forecast bands",
            )
    return out
