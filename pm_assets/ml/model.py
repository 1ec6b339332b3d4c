"""Asset ``ml/model``: train the ML return forecaster per horizon, register it, maybe promote it."""

import base64
import datetime as dt
import time

import dagster as dg
import polars as pl
from pydantic import Field

from model_code.ml.importance import importance_markdown, importance_plot_png, write_importance
from model_code.ml.lifecycle import (
    fit_forecaster,
    history_start,
    known_at,
    promotion_status,
    training_windows,
)
from model_code.ml.registry import ModelRegistry, feature_list_hash
from pm_resources import DUCKDB_POOL, WarehouseResource

FAMILIES = ("lgbm_regressor", "bayesian_ridge")
LAST = dt.date(9999, 12, 31)


class MlTrainingConfig(dg.Config):
    """What to train, on which windows, and how long the model stays usable."""

    horizons: list[int] = Field(default=[1, 5, 21, 63], description="Horizons in sessions, one model each.")
    family: str = Field(default="lgbm_regressor", description="lgbm_regressor or bayesian_ridge.")
    label: str = Field(
        default="fwd_ret_z", description="Training label: fwd_ret_z (vol-scaled) or fwd_ret (log return)."
    )
    label_transform: str = Field(
        default="cs_rank",
        description="cs_rank (rank within each date) or none; yhat is calibrated either way.",
    )
    train_years: float = Field(default=3.0, description="Training window length, before validation.")
    valid_months: int = Field(
        default=6, description="Validation window (early stopping, calibration, intervals, importance)."
    )
    until: str | None = Field(
        default=None,
        description="Train on what was known at this session's close (YYYY-MM-DD); default: all stored data.",
    )
    expiry_days: float = Field(default=30.0, description="Days after training when the model is refused.")
    seed: int = Field(default=0, description="LightGBM and permutation seed.")
    n_estimators: int = Field(default=500, description="LightGBM trees at most (early stopping picks fewer).")
    learning_rate: float = Field(default=0.05, description="LightGBM learning rate.")
    num_leaves: int = Field(default=31, description="LightGBM leaves per tree.")
    min_child_samples: int = Field(default=200, description="LightGBM minimum rows per leaf.")
    threads: int = Field(default=0, description="LightGBM threads; 0 = every core.")
    importance_repeats: int = Field(default=5, description="Shuffles per feature for permutation importance.")


def _params(config: MlTrainingConfig) -> dict | None:
    if config.family != "lgbm_regressor":
        return None
    return {
        "n_estimators": config.n_estimators,
        "learning_rate": config.learning_rate,
        "num_leaves": config.num_leaves,
        "min_child_samples": config.min_child_samples,
        "n_jobs": config.threads or None,
    }


def _plot(h: int, frame: pl.DataFrame) -> dict[str, dg.MetadataValue]:
    """The importance chart as an embedded PNG when matplotlib is installed. Without it
    ``importance_plot_png`` returns the markdown bar table, which ``feature_importance`` already
    shows, so nothing is added."""
    plot = importance_plot_png(frame)
    if not isinstance(plot, bytes):
        return {}
    image = base64.b64encode(plot).decode()
    return {
        f"importance_plot_h{h}": dg.MetadataValue.md(f"![importance h={h}](data:image/png;base64,{image})")
    }


# Trains weekly (ml_training_job); ml/predictions scores the champions every night.
@dg.asset(
    key=["ml", "model"],
    deps=[dg.AssetKey(["features", "daily"]), dg.AssetKey(["features", "targets"])],
    group_name="ml",
    kinds={"duckdb", "lightgbm", "scikit-learn"},
    owners=["team:research"],
    pool=DUCKDB_POOL,
)
def ml_model(
    context: dg.AssetExecutionContext, config: MlTrainingConfig, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """Trains one LightGBM (or Bayesian ridge) return forecaster per horizon on
    ``features.daily`` / ``features.targets``, registers it in ``models.registry`` with its
    artifact under ``$PM_HOME/models/``, and writes gain and permutation importance to
    ``models.feature_importance``.

    Windows end at the latest realized label: validation = the last ``valid_months`` of labelled
    dates, training = ``train_years`` before it, purged of labels that end inside validation.
    The score is calibrated to an h-session log return with split-conformal 80/95 % intervals on
    the validation window. The new model becomes champion when there is no usable champion for
    its family and horizon or its validation Rank IC is at least the champion's; otherwise it is
    registered as a challenger. Models expire ``expiry_days`` after training.
    """
    if config.family not in FAMILIES:
        raise dg.Failure(f"family must be one of {FAMILIES}, got {config.family!r}")
    until = dt.date.fromisoformat(config.until) if config.until else None
    with warehouse.open() as wh:
        last = wh.execute("SELECT max(date) FROM features.daily WHERE date <= ?", [until or LAST])[0][0]
        if last is None:
            raise dg.Failure("features.daily is empty: materialize features/daily and features/targets first")
        first = history_start(
            last,
            train_years=config.train_years,
            valid_months=config.valid_months,
            max_horizon=max(config.horizons),
        )
        features = wh.query("@features_daily_between", [first, until or LAST])
        targets = wh.query("@targets_between", [first, until or LAST])
    if until is not None:
        features, targets = known_at(features, targets, until, config.horizons)
    # Train every horizon first, then open the warehouse only to register: the file stays free
    # for readers while LightGBM runs.
    began = time.perf_counter()
    fits = {}
    for h in config.horizons:
        windows = training_windows(
            targets, h, train_years=config.train_years, valid_months=config.valid_months
        )
        fits[h] = (
            windows,
            fit_forecaster(
                features,
                targets,
                h,
                windows,
                family=config.family,  # type: ignore[arg-type]
                label=config.label,
                label_transform=config.label_transform,  # type: ignore[arg-type]
                seed=config.seed,
                params=_params(config),
                importance_repeats=config.importance_repeats,
            ),
        )
        context.log.info("ml/model h=%d trained in %.1fs so far", h, time.perf_counter() - began)
    training_seconds = time.perf_counter() - began
    metadata: dict[str, dg.MetadataValue] = {}
    sections, promoted = [], 0
    with warehouse.open() as wh:
        registry = ModelRegistry(wh)
        for h, (windows, fit) in fits.items():
            fc = fit.forecaster
            status, reason = promotion_status(
                fit.metrics["rank_ic"],
                registry.champion(config.family, h),
                feature_list_hash=feature_list_hash(fc.feature_columns),
                now=dt.datetime.now(dt.UTC).replace(tzinfo=None),
            )
            model_id = registry.register(
                fc,
                horizon=h,
                train_start=windows.train[0],
                train_end=windows.train[1],
                feature_list=fc.feature_columns,
                cv_metrics={
                    **fit.metrics,
                    "valid_start": windows.valid[0],
                    "valid_end": windows.valid[1],
                    "data_end": windows.data_end,
                },
                status=status,
                ttl_days=config.expiry_days,
            )
            write_importance(wh, model_id, fit.importance)
            promoted += status == "champion"
            context.log.info("ml/model h=%d: %s registered as %s (%s)", h, model_id, status, reason)
            m = fit.metrics
            metadata |= {
                f"valid_ic_h{h}": dg.MetadataValue.float(float(m["ic"])),
                f"valid_rank_ic_h{h}": dg.MetadataValue.float(float(m["rank_ic"])),
                f"valid_hit_rate_h{h}": dg.MetadataValue.float(float(m["hit"])),
                f"calibration_slope_h{h}": dg.MetadataValue.float(float(m["cal_slope"])),
                f"trees_h{h}": dg.MetadataValue.float(float(m["best_iteration"])),
                f"model_id_h{h}": dg.MetadataValue.text(model_id),
                f"status_h{h}": dg.MetadataValue.text(f"{status}: {reason}"),
                **_plot(h, fit.importance),
            }
            sections.append(
                f"### h = {h}: {model_id} ({status})\n\ntrain {windows.train[0]}..{windows.train[1]}, "
                f"validation {windows.valid[0]}..{windows.valid[1]}\n\n{importance_markdown(fit.importance)}"
            )
    return dg.MaterializeResult(
        metadata={
            **metadata,
            "horizons_trained": dg.MetadataValue.float(float(len(config.horizons))),
            "horizons_promoted": dg.MetadataValue.float(float(promoted)),
            "training_seconds": dg.MetadataValue.float(training_seconds),
            "training_rows_read": dg.MetadataValue.float(float(features.height)),
            "feature_importance": dg.MetadataValue.md("\n\n".join(sections)),
        }
    )
