"""Asset `features/targets`: forward log returns at 1/5/21/63 sessions, as they close."""

import datetime as dt

import dagster as dg
import polars as pl

from model_code.features import build_targets, targets_resolved_in
from model_code.horizons import HORIZONS
from pm_assets.market.ohlcv import MAX_PARTITIONS_PER_RUN
from pm_assets.metadata import per_partition, table
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
    `features.targets` (a separate table from the features, so no join can leak them).

    Partition T writes the rows dated in its window and fills in every horizon whose
    target date closed in it, using bars dated <= T only; a known target is never replaced
    by NULL, so partitions may run in any order.

    Read the metadata: rows written and `targets_closed_<h>d`, the targets whose horizon
    closed in the window (a table too).
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
    # Per partition: the rows dated that session, and the 1-session targets that closed in it.
    per_partition(context, rows, "date", lambda day: {"rows_dated": day.height})
    per_partition(context, rows, "target_date_1", lambda day: {"targets_closed_1d": day.height})
    closed = pl.DataFrame(
        {"horizon_sessions": list(known), "targets_closed": list(known.values())},
        schema={"horizon_sessions": pl.Int64, "targets_closed": pl.Int64},
    )
    metadata = {
        "rows_written": dg.MetadataValue.float(float(written)),
        **{f"targets_closed_{h}d": dg.MetadataValue.float(float(n)) for h, n in known.items()},
        "targets_closed_by_horizon": table(closed),
    }
    if not rows.height:
        metadata["why_empty"] = dg.MetadataValue.text(
            f"no stored bar dated {start}..{end} and no horizon closed in it: materialize market/ohlcv first"
        )
    return dg.MaterializeResult(metadata=metadata)
