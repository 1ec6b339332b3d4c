"""Asset ``features/daily``: point-in-time features per ticker and session."""

import datetime as dt

import dagster as dg
import polars as pl

from model_code.features import FEATURE_COLUMNS, build_daily_features
from pm_assets.market.ohlcv import MAX_PARTITIONS_PER_RUN
from pm_assets.partitions import partition_dates, trading_days
from pm_resources import DUCKDB_POOL, WarehouseResource


@dg.asset(
    key=["features", "daily"],
    deps=[dg.AssetKey(["market", "ohlcv"])],
    group_name="features",
    kinds={"duckdb", "polars"},
    owners=["team:research"],
    partitions_def=trading_days,
    backfill_policy=dg.BackfillPolicy.multi_run(max_partitions_per_run=MAX_PARTITIONS_PER_RUN),
    pool=DUCKDB_POOL,
)
def daily_features(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    """Momentum, ADX, Bollinger position, realized vol and vol ratio, Hurst, variance ratios,
    volume z-score and calendar features in ``features.daily``.

    Each row (ticker, T) is computed from every stored bar dated <= T and nothing later, so a
    backfill and a nightly run give the same numbers. Close-only tickers get NULL for the
    features that need high/low/volume.
    """
    start, end = partition_dates(context)
    with warehouse.open() as wh:
        bars = wh.query("@ohlcv_history_until", [end])
    features = build_daily_features(bars).filter(pl.col("date").is_between(start, end))
    stamp = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    with warehouse.open() as wh:
        written = wh.upsert(
            "features.daily", features.with_columns(computed_at=pl.lit(stamp)), ["ticker", "date"]
        )
    numeric = [c for c in FEATURE_COLUMNS if features.schema[c].is_float()]
    null_share = {c: features[c].null_count() / features.height for c in numeric} if features.height else {}
    return dg.MaterializeResult(
        metadata={
            "rows_written": dg.MetadataValue.float(float(written)),
            "tickers": dg.MetadataValue.float(float(features["ticker"].n_unique())),
            "history_bars_read": dg.MetadataValue.float(float(bars.height)),
            **{f"null_share_{c}": dg.MetadataValue.float(float(v)) for c, v in null_share.items()},
        }
    )
