"""Asset `forecasts/accuracy`: how the stored forecasts did, once their targets closed."""

import dagster as dg
import polars as pl
from pydantic import Field

from model_code.evaluation import accuracy_table, compare_to_random_walk
from model_code.market_data.calendar import trading_calendar
from model_code.reporting.charts import ratio_over_time_png
from pm_assets.metadata import image
from pm_assets.metadata import table as table_value
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
    `forecasts.accuracy`. Only forecasts whose target had closed are scored.

    Read the metadata: `rmse_ratio_<model>_h<h>` and the others chart across runs;
    `pooled_accuracy` is the pooled table and `accuracy_plot` each model's RMSE ratio against the
    random walk over the evaluations so far; `why_empty` says why nothing was scored.
    """
    with warehouse.open() as wh:
        latest = wh.query("SELECT max(target_date_1) AS d FROM features.targets")["d"][0]
        if latest is None:
            return dg.MaterializeResult(
                metadata={
                    "evaluated_rows": dg.MetadataValue.float(0.0),
                    "why_empty": dg.MetadataValue.text(
                        "features.targets has no closed target yet: materialize features/targets first"
                    ),
                }
            )
        since = trading_calendar().window_start(latest, config.window)
        evaluated = wh.query("@forecast_evaluation", [latest, since])
        columns = [c[0] for c in wh.execute("DESCRIBE forecasts.accuracy")]
    if evaluated.is_empty():
        context.log.info("no realized forecasts between %s and %s yet", since, latest)
        why = (
            f"no stored forecast between {since} and {latest} has a closed target yet (the first "
            "1-session forecasts are scored the session after they are made)"
        )
        return dg.MaterializeResult(
            metadata={"evaluated_rows": dg.MetadataValue.float(0.0), "why_empty": dg.MetadataValue.text(why)}
        )
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
    with warehouse.open() as wh:
        history = wh.query(
            "SELECT evaluated_through, model, horizon, rmse_ratio FROM forecasts.accuracy "
            "WHERE ticker = '*' AND evaluated_through <= ? ORDER BY evaluated_through",
            [latest],
        )
    metadata |= _accuracy_pictures(pooled, history)
    return dg.MaterializeResult(metadata=metadata)


POOLED_COLUMNS = (
    "model",
    "horizon",
    "n",
    "rmse",
    "rmse_ratio",
    "dm_p",
    "hit_rate",
    "coverage_80",
    "coverage_95",
)


def _accuracy_pictures(pooled: pl.DataFrame, history: pl.DataFrame) -> dict[str, dg.MetadataValue]:
    """The pooled accuracy per model and horizon as a table, and the 1-session RMSE ratio
    against the random walk per model over the evaluations so far."""
    out = {
        "pooled_accuracy": table_value(
            pooled.select([c for c in POOLED_COLUMNS if c in pooled.columns]).sort("horizon", "model"),
            limit=60,
        )
    }
    own = history.filter(pl.col("horizon") == history["horizon"].min()) if history.height else history
    if own.height:
        out["accuracy_plot"] = image(
            ratio_over_time_png(
                own,
                date="evaluated_through",
                title=f"pooled RMSE / random walk, h = {own['horizon'][0]} (below 1 beats it)",
            ),
            "accuracy over time",
        )
    return out
