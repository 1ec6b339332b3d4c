"""Asset `features/daily`: point-in-time features per ticker and session."""

import datetime as dt

import dagster as dg
import polars as pl

from model_code.features import FEATURE_COLUMNS, build_daily_features
from model_code.reporting.plots import bar_chart
from pm_assets.market.ohlcv import MAX_PARTITIONS_PER_RUN
from pm_assets.metadata import image, per_partition, table
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
    volume z-score and calendar features in `features.daily`.

    Each row (ticker, T) is computed from every stored bar dated <= T and nothing later, so a
    backfill and a nightly run give the same numbers. Close-only tickers get NULL for the
    features that need high/low/volume (`null_features_note` names them).

    Read the metadata: rows and tickers written, `null_share_<feature>` (charted across runs),
    `feature_summary` (NULL share, mean and std per feature) and `null_share_plot`.
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
    all_null = [c for c, v in null_share.items() if v == 1.0]
    per_partition(
        context,
        features,
        "date",
        lambda day: {"rows_written": day.height, "tickers": day["ticker"].n_unique() if day.height else 0},
    )
    summary = pl.DataFrame(
        {"feature": list(null_share), "null_share": list(null_share.values())},
        schema={"feature": pl.String, "null_share": pl.Float64},
    ).with_columns(
        mean=pl.Series([features[c].mean() for c in null_share], dtype=pl.Float64),
        std=pl.Series([features[c].std() for c in null_share], dtype=pl.Float64),
    )
    metadata: dict[str, dg.MetadataValue] = {
        "rows_written": dg.MetadataValue.float(float(written)),
        "tickers": dg.MetadataValue.float(float(features["ticker"].n_unique())),
        "history_bars_read": dg.MetadataValue.float(float(bars.height)),
        **{f"null_share_{c}": dg.MetadataValue.float(float(v)) for c, v in null_share.items()},
        "features_all_null": dg.MetadataValue.float(float(len(all_null))),
        "feature_summary": table(summary, limit=len(null_share)),
    }
    if all_null:
        metadata["null_features_note"] = dg.MetadataValue.text(
            f"{', '.join(all_null)} are NULL on every row: they need high/low/volume, which the "
            "stored bars lack (close-only data); models see them as missing."
        )
    if null_share:
        metadata["null_share_plot"] = image(
            bar_chart(list(null_share), list(null_share.values()), title="share of NULL values per feature"),
            "NULL share per feature",
        )
    if features.is_empty():
        metadata["why_empty"] = dg.MetadataValue.text(
            f"no stored bar dated {start}..{end}: materialize market/ohlcv for these sessions"
        )
    return dg.MaterializeResult(metadata=metadata)
