"""Asset `monitoring/model_health`: rolling accuracy of every forecaster and which decayed."""

import dataclasses

import dagster as dg
import polars as pl
from pydantic import Field

from model_code.market_data.calendar import trading_calendar
from model_code.monitoring import (
    FAMILIES,
    KEYS,
    POOLED,
    DecaySettings,
    evaluate,
    listed_pairs,
    load_monitoring_settings,
    pairs_markdown,
    pairs_records,
    refit_request,
)
from model_code.reporting.charts import ratio_over_time_png
from pm_assets.market.ohlcv import MAX_PARTITIONS_PER_RUN
from pm_assets.metadata import image, per_partition, table
from pm_assets.partitions import partition_dates, trading_days
from pm_resources import DUCKDB_POOL, WarehouseResource

HISTORY_SESSIONS = 126  # sessions of pooled history in the picture
MODEL_HEALTH = dg.AssetKey(["monitoring", "model_health"])
# The sensors read these metadata keys (pm_sensors/accuracy_decay.py).
REFIT_METADATA = "refit_request"
DECAYED_METADATA = "decayed_pairs"


def decay_check_name(family: str) -> str:
    return f"{family}_models_decay"


class ModelHealthConfig(dg.Config):
    """Overrides of `config/monitoring.yaml`'s `decay:` section for one run (None: the file)."""

    window_sessions: int | None = Field(default=None, description="Sessions of closed targets judged.")
    min_hit_rate: float | None = Field(default=None, description="Hit rate below which a pair decayed.")
    max_rmse_ratio: float | None = Field(default=None, description="RMSE ratio above which a pair decayed.")
    min_observations: int | None = Field(default=None, description="Realized forecasts needed to judge.")

    def settings(self) -> DecaySettings:
        base = load_monitoring_settings().decay
        overrides = {k: v for k, v in self.model_dump().items() if v is not None}
        return dataclasses.replace(base, **overrides)


def _pooled_metadata(day: pl.DataFrame) -> dict[str, dg.MetadataValue]:
    out: dict[str, dg.MetadataValue] = {}
    pooled = day.filter(pl.col("ticker") == POOLED)
    for row in pooled.iter_rows(named=True):
        tag = f"{row['model']}_h{row['horizon']}"
        for metric in ("hit_rate", "up_rate", "rmse_ratio", "coverage_80", "coverage_95"):
            if row[metric] is not None:
                out[f"{metric}_{tag}"] = dg.MetadataValue.float(float(row[metric]))
    listed = listed_pairs(day)
    for model in sorted(day["model"].unique().to_list()):
        out[f"decayed_pairs_{model}"] = dg.MetadataValue.float(float((listed["model"] == model).sum()))
    return out


@dg.asset(
    key=MODEL_HEALTH,
    deps=[
        dg.AssetKey(["forecasts", "predictions"]),
        dg.AssetKey(["ml", "predictions"]),
        dg.AssetKey(["features", "targets"]),
    ],
    group_name="monitoring",
    kinds={"duckdb", "polars"},
    owners=["team:research"],
    partitions_def=trading_days,
    backfill_policy=dg.BackfillPolicy.multi_run(max_partitions_per_run=MAX_PARTITIONS_PER_RUN),
    pool=DUCKDB_POOL,
    check_specs=[
        dg.AssetCheckSpec(
            decay_check_name(family),
            asset=MODEL_HEALTH,
            description=f"Warns when any {family} model's rolling hit rate or RMSE ratio crossed its threshold.",
        )
        for family in FAMILIES
    ],
)
def model_health(
    context: dg.AssetExecutionContext, config: ModelHealthConfig, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """Rolling hit rate (beside the always-up rate), RMSE ratio against the random walk and
    80/95 % interval coverage of every statistical and ML forecaster per ticker and horizon, and
    pooled, over the forecasts whose targets closed in the last 63 sessions, in
    `monitoring.model_health`; with the pairs that decayed (`config/monitoring.yaml`).

    Metadata of the last session: pooled metrics per model and horizon (`pooled_latest`), the
    decayed pairs (JSON, and a table when there are any) and `refit_request`, the pairs that
    crossed their threshold, which the accuracy-decay sensor turns into refit runs;
    `accuracy_plot` draws each model's pooled RMSE ratio against the random walk over the last
    half year. In a ranged run each partition shows its own judged and decayed counts.
    """
    settings = config.settings()
    start, end = partition_dates(context)
    calendar = trading_calendar()
    sessions = calendar.session_dates(start, end)
    since = calendar.window_start(start, settings.window_sessions)
    with warehouse.open() as wh:
        forecasts = wh.query("@monitoring_forecasts", [since, end])
        first = forecasts["origin"].min() if forecasts.height else end
        targets = wh.query("@targets_between", [first, end])
        previous = wh.query(
            "SELECT model, ticker, horizon, decayed FROM monitoring.model_health WHERE as_of = ?",
            [calendar.previous_session(start)],
        )
        columns = [c[0] for c in wh.execute("DESCRIBE monitoring.model_health")]
    health = evaluate(forecasts, targets, sessions, settings, previous=previous if previous.height else None)
    with warehouse.open() as wh:
        if health.height:
            with wh.transaction():
                wh.upsert("monitoring.model_health", health.select(columns), KEYS)
        # The pooled record over the last half year, for the accuracy-over-time picture.
        history = wh.query(
            "SELECT as_of, model, horizon, rmse_ratio, hit_rate FROM monitoring.model_health "
            "WHERE ticker = ? AND as_of BETWEEN ? AND ? ORDER BY as_of, model",
            [POOLED, calendar.window_start(end, HISTORY_SESSIONS), end],
        )
    day = health.filter(pl.col("as_of") == end)
    listed = listed_pairs(day)
    request = refit_request(day)
    context.log.info(
        "monitoring/model_health %s..%s: %d rows, %d decayed pairs", start, end, health.height, listed.height
    )
    checks = []
    for family in FAMILIES:
        own = listed.filter(pl.col("family") == family)
        checks.append(
            dg.AssetCheckResult(
                check_name=decay_check_name(family),
                passed=own.is_empty(),
                severity=dg.AssetCheckSeverity.WARN,
                metadata={
                    "decayed_pairs": dg.MetadataValue.float(float(own.height)),
                    "crossed_pairs": dg.MetadataValue.float(float(own["crossed"].sum())),
                    "pairs": dg.MetadataValue.md(pairs_markdown(own)),
                },
            )
        )
    metadata = {
        "as_of": dg.MetadataValue.text(end.isoformat()),
        "rows_written": dg.MetadataValue.float(float(health.height)),
        "judged_pairs": dg.MetadataValue.float(float(day["judged"].sum())),
        "decayed_count": dg.MetadataValue.float(float(listed.height)),
        DECAYED_METADATA: dg.MetadataValue.json(pairs_records(listed)),
        **({"decayed_table": dg.MetadataValue.md(pairs_markdown(listed))} if listed.height else {}),
        REFIT_METADATA: dg.MetadataValue.json(request),
        **_pooled_metadata(day),
        **_history_metadata(history, day),
    }
    if health.is_empty():
        metadata["why_empty"] = dg.MetadataValue.text(
            f"no forecast whose target closed in the {settings.window_sessions} sessions before "
            f"{start}..{end}: materialize forecasts/predictions, ml/predictions and features/targets first"
        )
    per_partition(
        context,
        health,
        "as_of",
        lambda d: {
            "judged_pairs": d["judged"].sum() if d.height else 0,
            "decayed_rows": d.filter(pl.col("ticker") != POOLED)["decayed"].sum() if d.height else 0,
        },
    )
    return dg.MaterializeResult(metadata=metadata, check_results=checks)


def _history_metadata(history: pl.DataFrame, day: pl.DataFrame) -> dict[str, dg.MetadataValue]:
    """Pooled accuracy per model: the last session as a table, and RMSE ratio over time."""
    out: dict[str, dg.MetadataValue] = {}
    pooled = day.filter(pl.col("ticker") == POOLED)
    if pooled.height:
        out["pooled_latest"] = table(
            pooled.select(
                "model", "horizon", "n", "hit_rate", "up_rate", "rmse_ratio", "coverage_80", "coverage_95"
            ).sort("horizon", "model"),
            limit=60,
        )
    if history.is_empty():
        return out
    horizon = int(history["horizon"].min())
    own = history.filter(pl.col("horizon") == horizon)
    if own["as_of"].n_unique() < 2:
        return out
    out["accuracy_plot"] = image(
        ratio_over_time_png(
            own, date="as_of", title=f"pooled RMSE / random walk, h = {horizon} (below 1 beats it)"
        ),
        "model health over time",
    )
    return out
