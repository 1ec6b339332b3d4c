"""Asset `ml/predictions`: the champion ML models' return forecasts at each as_of close."""

import dagster as dg
import polars as pl
from pydantic import Field

from model_code.forecasting.base import HORIZONS
from model_code.governance_store import no_champion_reason
from model_code.market_data.calendar import trading_calendar
from model_code.ml.lifecycle import MODEL_NAMES
from model_code.ml.registry import ModelRegistry, load_artifact
from model_code.ml.scoring import KEYS, score_champions
from pm_assets.market.ohlcv import MAX_PARTITIONS_PER_RUN
from pm_assets.metadata import per_partition, table
from pm_assets.partitions import partition_dates, trading_days
from pm_resources import DUCKDB_POOL, WarehouseResource


class MlPredictionConfig(dg.Config):
    """Which champions to score."""

    families: list[str] = Field(
        default=list(MODEL_NAMES), description="Model families whose champions are scored (if any)."
    )
    horizons: list[int] = Field(default=list(HORIZONS), description="Horizons in sessions.")


def _names(labels: list[str]) -> dg.MetadataValue:
    return dg.MetadataValue.text(", ".join(labels) or "none")


@dg.asset(
    key=["ml", "predictions"],
    deps=[dg.AssetKey(["ml", "model"]), dg.AssetKey(["features", "daily"])],
    group_name="ml",
    kinds={"duckdb", "lightgbm", "polars"},
    owners=["team:research"],
    partitions_def=trading_days,
    # The nightly job's policy (Dagster wants one per job).
    backfill_policy=dg.BackfillPolicy.multi_run(max_partitions_per_run=MAX_PARTITIONS_PER_RUN),
    pool=DUCKDB_POOL,
)
def ml_predictions(
    context: dg.AssetExecutionContext, config: MlPredictionConfig, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """Forecasts of the cumulative log return over 1/5/21/63 sessions with 80/95 % intervals
    from the champion ML model of each family and horizon, in `forecasts.ml_predictions` (the
    columns of `forecasts.predictions`; model `lgbm` / `bayesian_ridge`).

    Each as_of scores only the feature rows dated as_of. A family and horizon without a champion
    (governance promoted none) abstains: no rows, and `no_champion_reasons` gives the latest
    `models.decisions` reason. A champion past its expiry is refused
    (no rows for that horizon, listed in `expired_horizons`); so is one trained on labels that
    closed after as_of (`not_point_in_time`), which would be a look-ahead.

    Read the metadata: rows and tickers written (per partition in a ranged run),
    `outcomes` (each family and horizon: scored, or why not), `latest_forecasts` (the last
    session's rows), and `why_empty` when nothing was scored.
    """
    start, end = partition_dates(context)
    sessions = trading_calendar().session_dates(start, end)
    with warehouse.open() as wh:
        registry = ModelRegistry(wh)
        champions = {(f, h): registry.champion(f, h) for f in config.families for h in config.horizons}
        why = {key: no_champion_reason(wh, *key) for key, rec in champions.items() if rec is None}
        features = wh.query("@features_daily_between", [start, end])
    # Artifacts are plain files: they load, and the models score, with the warehouse closed.
    result = score_champions(champions, load_artifact, features, sessions, why)
    if result.rows.height:
        with warehouse.open() as wh, wh.transaction():
            wh.upsert("forecasts.ml_predictions", result.rows, KEYS)
    for as_of, n in result.rows_per_session.items():
        context.log.info("ml/predictions %s: %d rows", as_of, n)
    for label, message in sorted(result.skipped["no_champion"].items()):
        context.log.info("ml/predictions %s abstains: %s", label, message)
    for reason in ("expired", "not_point_in_time"):
        for label, message in sorted(result.skipped[reason].items()):
            context.log.warning("ml/predictions %s: %s", label, message)
    expired = result.labels("expired")
    if expired:
        context.log.warning(
            "ml/predictions: expired champion(s) %s made no forecasts; re-materialize ml/model "
            "(ml_training_job) to train fresh ones",
            expired,
        )
    messages = sorted(result.skipped["expired"].items())
    per_partition(
        context,
        result.rows,
        "as_of",
        lambda day: {"rows_written": day.height, "tickers": day["ticker"].n_unique() if day.height else 0},
    )
    outcomes = [(label, "scored", "") for label in sorted(result.scored)] + [
        (label, reason, message[:200])
        for reason, labels in sorted(result.skipped.items())
        for label, message in sorted(labels.items())
    ]
    extra: dict[str, dg.MetadataValue] = {
        "outcomes": table(
            pl.DataFrame(outcomes, schema=["champion", "outcome", "message"], orient="row"), limit=40
        )
    }
    if result.rows.height:
        latest = result.rows.filter(pl.col("as_of") == result.rows["as_of"].max())
        extra["latest_forecasts"] = table(latest.sort("horizon", "ticker"), limit=20)
    else:
        reasons = {
            **result.skipped["no_champion"],
            **result.skipped["expired"],
            **result.skipped["not_point_in_time"],
        }
        extra["why_empty"] = dg.MetadataValue.text(
            "; ".join(f"{k}: {v}" for k, v in sorted(reasons.items()))[:1000]
            or f"no feature row dated {start}..{end}: materialize features/daily first"
        )
    return dg.MaterializeResult(
        metadata={
            **extra,
            "rows_written": dg.MetadataValue.float(float(result.rows.height)),
            "tickers": dg.MetadataValue.float(float(result.tickers)),
            "as_of_sessions": dg.MetadataValue.float(float(len(sessions))),
            "horizons_scored": dg.MetadataValue.float(float(len(result.scored))),
            "scored": _names(sorted(result.scored)),
            "model_ids": _names(sorted(result.model_ids)),
            "expired_horizons": _names(expired),
            "expired_count": dg.MetadataValue.float(float(len(expired))),
            "not_point_in_time": _names(result.labels("not_point_in_time")),
            "no_champion": _names(result.labels("no_champion")),
            "no_champion_reasons": dg.MetadataValue.md(
                "\n\n".join(f"* **{k}**: {v}" for k, v in sorted(result.skipped["no_champion"].items()))
                or "every family and horizon has a champion"
            ),
            "not_a_forecaster": _names(result.labels("not_a_forecaster")),
            "expiry_messages": dg.MetadataValue.md(
                "\n\n".join(f"* **{k}**: {v}" for k, v in messages) or "no champion expired"
            ),
        }
    )
