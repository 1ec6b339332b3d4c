"""Asset `monitoring/freshness`: how old the bars, the statistical fits and the ML models are."""

import dagster as dg
import polars as pl

from model_code.market_data.calendar import trading_calendar
from model_code.monitoring import freshness, load_monitoring_settings, ml_age, statistical_age
from pm_assets.market.ohlcv import MAX_PARTITIONS_PER_RUN
from pm_assets.metadata import per_partition, table
from pm_assets.partitions import partition_dates, trading_days
from pm_resources import DUCKDB_POOL, WarehouseResource

FITS_EXIST = (
    "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'models' AND table_name = 'fits'"
)


@dg.asset(
    key=["monitoring", "freshness"],
    deps=[
        dg.AssetKey(["market", "ohlcv"]),
        dg.AssetKey(["forecasts", "predictions"]),
        dg.AssetKey(["ml", "predictions"]),
    ],
    group_name="monitoring",
    kinds={"duckdb", "polars"},
    owners=["team:research"],
    partitions_def=trading_days,
    backfill_policy=dg.BackfillPolicy.multi_run(max_partitions_per_run=MAX_PARTITIONS_PER_RUN),
    pool=DUCKDB_POOL,
)
def monitoring_freshness(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """Sessions since each active ticker's last stored bar (`monitoring.freshness`; stale past
    `freshness.stale_after_sessions` of `config/monitoring.yaml`) and the age in sessions
    and days of the fit behind each statistical (ticker, model) and of each ML champion
    (`monitoring.model_age`), per as_of. Statistical fits come from `models.fits` when that
    table exists; otherwise they are refitted each night and their age is 0.

    Read the metadata: stale tickers (count and names), `most_behind` (the tickers furthest
    behind), `age_sessions_<model>` and `model_age`; per partition in a ranged run.
    """
    settings = load_monitoring_settings().freshness
    start, end = partition_dates(context)
    calendar = trading_calendar()
    sessions = calendar.session_dates(start, end)
    with warehouse.open() as wh:
        last_dates = {day: wh.query("@ohlcv_last_dates", [day]) for day in sessions}
        predicted = wh.query(
            "SELECT DISTINCT as_of, ticker, model FROM forecasts.predictions "
            "WHERE model <> 'ensemble' AND as_of BETWEEN ? AND ?",
            [start, end],
        )
        has_fits = wh.execute(FITS_EXIST)[0][0] > 0
        fits = (
            wh.query(
                "SELECT ticker, model, fitted_at, window_end FROM models.fits WHERE window_end <= ?", [end]
            )
            if has_fits
            else None
        )
        champions = wh.query(
            "SELECT family, horizon, model_id, trained_at, train_end FROM models.registry WHERE status = 'champion'"
        )
    fresh = pl.concat(
        [freshness(last_dates[d], d, settings.stale_after_sessions, calendar) for d in sessions],
        how="vertical",
    )
    ages = pl.concat(
        [
            *(statistical_age(predicted.filter(pl.col("as_of") == d), fits, d, calendar) for d in sessions),
            *(ml_age(champions.filter(pl.col("train_end") <= d), d, calendar) for d in sessions),
        ],
        how="vertical",
    )
    with warehouse.open() as wh, wh.transaction():
        if fresh.height:
            wh.upsert("monitoring.freshness", fresh, ["as_of", "ticker"])
        if ages.height:
            wh.upsert("monitoring.model_age", ages, ["as_of", "model", "ticker", "horizon"])
    day, age_day = fresh.filter(pl.col("as_of") == end), ages.filter(pl.col("as_of") == end)
    stale = day.filter(pl.col("stale"))
    if stale.height:
        context.log.warning("monitoring/freshness %s: stale tickers %s", end, stale["ticker"].to_list()[:50])
    metadata: dict[str, dg.MetadataValue] = {
        "as_of": dg.MetadataValue.text(end.isoformat()),
        "tickers": dg.MetadataValue.float(float(day.height)),
        "stale_tickers": dg.MetadataValue.float(float(stale.height)),
        "stale": dg.MetadataValue.text(", ".join(stale["ticker"].to_list()[:50]) or "none"),
        "max_sessions_behind": dg.MetadataValue.float(float(day["sessions_behind"].max() or 0)),
        "statistical_fit_source": dg.MetadataValue.text("models.fits" if has_fits else "nightly_refit"),
    }
    per_model = (
        age_day.group_by("family", "model", "horizon")
        .agg(pl.col("age_sessions").max())
        .sort("model", "horizon")
    )
    for family, model, horizon, age in per_model.iter_rows():
        tag = model if family == "statistical" else f"{model}_h{horizon}"
        if age is not None:
            metadata[f"age_sessions_{tag}"] = dg.MetadataValue.float(float(age))
    per_partition(
        context,
        fresh,
        "as_of",
        lambda d: {
            "tickers": d.height,
            "stale_tickers": d["stale"].sum() if d.height else 0,
            "max_sessions_behind": d["sessions_behind"].max() if d.height else 0,
        },
    )
    if day.height:
        metadata["most_behind"] = table(
            day.select("ticker", "sessions_behind", "stale").sort(
                "sessions_behind", descending=True, nulls_last=False
            ),
            limit=20,
        )
    if age_day.height:
        metadata["model_age"] = table(per_model, limit=40)
    if fresh.is_empty():
        metadata["why_empty"] = dg.MetadataValue.text(
            "market.universe has no active ticker for these sessions"
        )
    return dg.MaterializeResult(metadata=metadata)
