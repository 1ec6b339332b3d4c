"""Asset ``ml/predictions``: the champion ML models' return forecasts at each as_of close."""

import datetime as dt

import dagster as dg
import polars as pl
from pydantic import Field

from model_code.forecasting.predictions import target_dates
from model_code.market_data.calendar import trading_calendar
from model_code.ml.forecasts import ReturnForecaster, prediction_rows
from model_code.ml.lifecycle import MODEL_NAMES
from model_code.ml.registry import ModelExpired, ModelRegistry, RegistryRecord
from pm_assets.market.ohlcv import MAX_PARTITIONS_PER_RUN
from pm_assets.partitions import partition_dates, trading_days
from pm_resources import DUCKDB_POOL, WarehouseResource

KEYS = ["as_of", "ticker", "model", "horizon"]


class MlPredictionConfig(dg.Config):
    """Which champions to score."""

    families: list[str] = Field(
        default=list(MODEL_NAMES), description="Model families whose champions are scored (if any)."
    )
    horizons: list[int] = Field(default=[1, 5, 21, 63], description="Horizons in sessions.")


def _label(rec: RegistryRecord) -> str:
    return f"{MODEL_NAMES.get(rec.family, rec.family)} h={rec.horizon}"


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
    from the champion ML model of each family and horizon, in ``forecasts.ml_predictions`` (the
    columns of ``forecasts.predictions``; model ``lgbm`` / ``bayesian_ridge``).

    Each as_of scores only the feature rows dated as_of. A champion past its expiry is refused
    (no rows for that horizon, listed in ``expired_horizons``); so is one trained on labels that
    closed after as_of (``not_point_in_time``), which would be a look-ahead.
    """
    start, end = partition_dates(context)
    sessions = [dt.date.fromisoformat(str(d)) for d in trading_calendar().sessions_in_range(start, end)]
    loaded: dict[str, ReturnForecaster] = {}
    skipped: dict[str, set[str]] = {
        "expired": set(),
        "not_point_in_time": set(),
        "no_champion": set(),
        "not_a_forecaster": set(),
    }
    messages: dict[str, str] = {}
    used: set[str] = set()
    scored: set[str] = set()
    rows_total, tickers = 0, 0
    with warehouse.open() as wh:
        registry = ModelRegistry(wh)
        champions = {(f, h): registry.champion(f, h) for f in config.families for h in config.horizons}
        skipped["no_champion"] = {
            f"{MODEL_NAMES.get(f, f)} h={h}" for (f, h), rec in champions.items() if rec is None
        }
        features = wh.query("@features_daily_between", [start, end])
        for as_of in sessions:
            day = features.filter(pl.col("date") == as_of)
            ahead = target_dates(as_of, config.horizons)
            frames = []
            for rec in filter(None, champions.values()):
                try:
                    rec.check_usable(as_of)
                except ModelExpired as exc:
                    if _label(rec) not in messages:
                        context.log.warning("ml/predictions %s: %s", as_of, exc)
                    messages.setdefault(_label(rec), str(exc))
                    skipped["expired"].add(_label(rec))
                    continue
                if rec.model_id not in loaded:
                    loaded[rec.model_id] = registry.load(rec.model_id, as_of=as_of)[0]
                model = loaded[rec.model_id]
                if not isinstance(model, ReturnForecaster):
                    skipped["not_a_forecaster"].add(_label(rec))
                    continue
                if not model.usable_at(as_of):
                    context.log.warning(
                        "ml/predictions %s: champion %s learned from bars up to %s, after this as_of; "
                        "no forecasts (they would look ahead)",
                        as_of,
                        rec.model_id,
                        model.data_end,
                    )
                    skipped["not_point_in_time"].add(_label(rec))
                    continue
                if day.height == 0:
                    continue
                frames.append(
                    prediction_rows(
                        model.forecast(day),
                        as_of=as_of,
                        model=MODEL_NAMES.get(rec.family, rec.family),
                        horizon=rec.horizon,
                        target_date=ahead[rec.horizon],
                    )
                )
                used.add(rec.model_id)
                scored.add(_label(rec))
            if frames:
                rows = pl.concat(frames)
                with wh.transaction():
                    wh.upsert("forecasts.ml_predictions", rows, KEYS)
                rows_total += rows.height
                tickers = max(tickers, rows["ticker"].n_unique())
            context.log.info("ml/predictions %s: %d rows", as_of, sum(f.height for f in frames))
    if skipped["expired"]:
        context.log.warning(
            "ml/predictions: expired champion(s) %s made no forecasts; re-materialize ml/model "
            "(ml_training_job) to train fresh ones",
            sorted(skipped["expired"]),
        )
    return dg.MaterializeResult(
        metadata={
            "rows_written": dg.MetadataValue.float(float(rows_total)),
            "tickers": dg.MetadataValue.float(float(tickers)),
            "as_of_sessions": dg.MetadataValue.float(float(len(sessions))),
            "horizons_scored": dg.MetadataValue.float(float(len(scored))),
            "scored": dg.MetadataValue.text(", ".join(sorted(scored)) or "none"),
            "model_ids": dg.MetadataValue.text(", ".join(sorted(used)) or "none"),
            "expired_horizons": dg.MetadataValue.text(", ".join(sorted(skipped["expired"])) or "none"),
            "expired_count": dg.MetadataValue.float(float(len(skipped["expired"]))),
            "not_point_in_time": dg.MetadataValue.text(
                ", ".join(sorted(skipped["not_point_in_time"])) or "none"
            ),
            "no_champion": dg.MetadataValue.text(", ".join(sorted(skipped["no_champion"])) or "none"),
            "not_a_forecaster": dg.MetadataValue.text(
                ", ".join(sorted(skipped["not_a_forecaster"])) or "none"
            ),
            "expiry_messages": dg.MetadataValue.md(
                "\n\n".join(f"* **{k}**: {v}" for k, v in sorted(messages.items())) or "no champion expired"
            ),
        }
    )
