"""Asset ``features/targets``: forward log returns at 1/5/21/63 sessions, as they close."""

import datetime as dt

import dagster as dg
import polars as pl

from model_code.features import build_targets, targets_resolved_in
from model_code.horizons import HORIZONS
from pm_assets.market.ohlcv import MAX_PARTITIONS_PER_RUN
from pm_assets.partitions import partition_dates, trading_days
from pm_resources import DUCKDB_POOL, WarehouseResource


@dg.asset(
    key=["features", "targets"],
    deps=[dg.AssetKey(["market", "ohlcv"])],
    group_name="features",
    kinds={"duckdb", "polars"},
    owners=["team:research"],
    partitions_def=trading_days,
    backfill_policy=dg.BackfillPolicy.multi_run(max_partitions_per_run=MAX_PARTITIONS_PER_RUN),
    pool=DUCKDB_POOL,
)
def targets(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    """Forward log returns, their vol-scaled versions and significant-move labels in
    ``features.targets`` (a separate table from the features, so no join can leak them).

    Partition T writes the rows dated in its window and fills in every horizon whose
    target date closed in it, using bars dated <= T only; a known target is never replaced
    by NULL, so partitions may run in any order.
    """
    start, end = partition_dates(context)
    with warehouse.open() as wh:
        bars = wh.query("@ohlcv_history_until", [end])
    rows = targets_resolved_in(build_targets(bars), start, end)
    stamp = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    with warehouse.open() as wh:
        written = wh.upsert(
            "features.targets",
            rows.with_columns(computed_at=pl.lit(stamp)),
            ["ticker", "date"],
            keep_known=True,
        )
    known = {h: rows.filter(pl.col(f"target_date_{h}").is_between(start, end)).height for h in HORIZONS}
    return dg.MaterializeResult(
        metadata={
            "rows_written": dg.MetadataValue.float(float(written)),
            **{f"targets_closed_{h}d": dg.MetadataValue.float(float(n)) for h, n in known.items()},
        }
    )
