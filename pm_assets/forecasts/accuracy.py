"""Asset ``forecasts/accuracy``: how the stored forecasts did, once their targets closed."""

import dagster as dg
import polars as pl
from pydantic import Field

from model_code.evaluation import accuracy_table, compare_to_random_walk
from model_code.market_data.calendar import trading_calendar
from pm_resources import DUCKDB_POOL, WarehouseResource


class AccuracyConfig(dg.Config):
    window: int = Field(default=252, description="Trailing as_of sessions evaluated.")


@dg.asset(
    key=["forecasts", "accuracy"],
    deps=[dg.AssetKey(["forecasts", "predictions"]), dg.AssetKey(["features", "targets"])],
    group_name="forecasts",
    kinds={"duckdb", "polars"},
    owners=["team:research"],
    pool=DUCKDB_POOL,
)
def accuracy(
    context: dg.AssetExecutionContext, config: AccuracyConfig, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """RMSE, MAE, sMAPE, hit rate ± s.e., tracking error and 80/95 % interval coverage of every
    model's realized forecasts over the trailing window, per ticker and pooled, with each
    model's RMSE ratio and Diebold–Mariano (HLN) test against the random walk, in
    ``forecasts.accuracy``. Only forecasts whose target had closed are scored.
    """
    with warehouse.open() as wh:
        latest = wh.query("SELECT max(target_date_1) AS d FROM features.targets")["d"][0]
        if latest is None:
            return dg.MaterializeResult(metadata={"evaluated_rows": dg.MetadataValue.float(0.0)})
        since = trading_calendar().window_start(latest, config.window)
        evaluated = wh.query("@forecast_evaluation", [latest, since])
        columns = [c[0] for c in wh.execute("DESCRIBE forecasts.accuracy")]
    if evaluated.is_empty():
        context.log.info("no realized forecasts between %s and %s yet", since, latest)
        return dg.MaterializeResult(metadata={"evaluated_rows": dg.MetadataValue.float(0.0)})
    pooled = compare_to_random_walk(evaluated).with_columns(ticker=pl.lit("*"))
    per_ticker = accuracy_table(evaluated, by=("model", "ticker", "horizon"))
    table = pl.concat([pooled, per_ticker], how="diagonal_relaxed").with_columns(
        evaluated_through=pl.lit(latest), window_start=pl.lit(since)
    )
    with warehouse.open() as wh:
        wh.upsert(
            "forecasts.accuracy",
            table.select([c for c in columns if c in table.columns]),
            ["evaluated_through", "model", "ticker", "horizon"],
        )
    metadata = {"evaluated_rows": dg.MetadataValue.float(float(evaluated.height))}
    for row in pooled.iter_rows(named=True):
        tag = f"{row['model']}_h{row['horizon']}"
        for metric in ("rmse_ratio", "hit_rate", "coverage_80", "dm_p"):
            if row.get(metric) is not None:
                metadata[f"{metric}_{tag}"] = dg.MetadataValue.float(float(row[metric]))
    return dg.MaterializeResult(metadata=metadata)
