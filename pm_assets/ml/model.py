"""Asset `ml/model`: train the ML return forecaster per horizon, register it, and let governance decide the champion."""

import datetime as dt
import time

import dagster as dg
import polars as pl
from pydantic import Field

from model_code.forecasting.base import HORIZONS
from model_code.governance_store import decisions_markdown, latest_decisions
from model_code.ml.importance import importance_markdown, importance_plot_png
from model_code.ml.lifecycle import (
    FAMILIES,
    HorizonFit,
    Registration,
    history_start,
    known_at,
    register_fits,
    train_horizons,
)
from model_code.ml.models import LGBM_DEFAULTS
from pm_assets.metadata import image, table
from pm_resources import DUCKDB_POOL, WarehouseResource

LAST = dt.date(9999, 12, 31)


class MlTrainingConfig(dg.Config):
    """What to train, on which windows, and how long the model stays usable."""

    horizons: list[int] = Field(default=list(HORIZONS), description="Horizons in sessions, one model each.")
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
    n_estimators: int = Field(
        default=LGBM_DEFAULTS["n_estimators"],
        description="LightGBM trees at most (early stopping picks fewer).",
    )
    learning_rate: float = Field(
        default=LGBM_DEFAULTS["learning_rate"], description="LightGBM learning rate."
    )
    num_leaves: int = Field(default=LGBM_DEFAULTS["num_leaves"], description="LightGBM leaves per tree.")
    min_child_samples: int = Field(
        default=LGBM_DEFAULTS["min_child_samples"], description="LightGBM minimum rows per leaf."
    )
    threads: int = Field(default=0, description="LightGBM threads; 0 = every core.")
    importance_repeats: int = Field(default=5, description="Shuffles per feature for permutation importance.")
    governance_folds: int = Field(
        default=3, description="Purged walk-forward folds of the out-of-fold record governance gates on."
    )


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
    """The importance chart as an embedded PNG and the importances as a typed table."""
    return {
        f"importance_plot_h{h}": image(
            importance_plot_png(frame, title=f"permutation importance, h = {h}"), f"importance h={h}"
        ),
        f"importance_table_h{h}": table(frame, limit=40),
    }


def _horizon_metadata(hf: HorizonFit, reg: Registration) -> dict[str, dg.MetadataValue]:
    h, m = hf.horizon, hf.fit.metrics
    return {
        f"valid_ic_h{h}": dg.MetadataValue.float(float(m["ic"])),
        f"valid_rank_ic_h{h}": dg.MetadataValue.float(float(m["rank_ic"])),
        f"valid_hit_rate_h{h}": dg.MetadataValue.float(float(m["hit"])),
        f"calibration_slope_h{h}": dg.MetadataValue.float(float(m["cal_slope"])),
        f"trees_h{h}": dg.MetadataValue.float(float(m["best_iteration"])),
        f"oof_rank_ic_h{h}": dg.MetadataValue.float(float(m["oof_rank_ic"])),
        f"model_id_h{h}": dg.MetadataValue.text(reg.model_id),
        f"status_h{h}": dg.MetadataValue.text(f"{reg.status}: {reg.reason}"),
        **_negative_skill_flag(h, reg, float(m["rank_ic"])),
        **_decision_metadata(h, reg),
        **_plot(h, hf.fit.importance),
    }


def _negative_skill_flag(h: int, reg: Registration, rank_ic: float) -> dict[str, dg.MetadataValue]:
    """Flag a champion whose validation rank IC is negative: governance gates on the out-of-fold
    record, which can pass while the last validation window ranked tickers backwards."""
    flagged = reg.status == "champion" and rank_ic < 0
    out = {f"negative_valid_rank_ic_h{h}": dg.MetadataValue.float(float(flagged))}
    if flagged:
        out[f"warning_h{h}"] = dg.MetadataValue.text(
            f"promoted with a negative validation rank IC ({rank_ic:.4f}): the out-of-fold record "
            "passed the gate, but the latest validation window ranked tickers backwards; watch "
            "monitoring/model_health"
        )
    return out


def _evidence_float(value: object) -> float:
    return float(value) if isinstance(value, int | float) else float("nan")


def _decision_metadata(h: int, reg: Registration) -> dict[str, dg.MetadataValue]:
    """The gate's numbers on the new model (NaN where the gate had none) and its action."""
    d = reg.decision
    if d is None:
        return {}
    ev = d.evidence
    return {
        f"decision_h{h}": dg.MetadataValue.text(f"{d.action}: {d.reason}"),
        f"dm_p_h{h}": dg.MetadataValue.float(_evidence_float(ev.get("dm_p_one_sided"))),
        f"dm_stat_h{h}": dg.MetadataValue.float(_evidence_float(ev.get("dm_stat"))),
        f"dsr_h{h}": dg.MetadataValue.float(_evidence_float(ev.get("dsr"))),
        f"profit_factor_uplift_h{h}": dg.MetadataValue.float(_evidence_float(ev.get("profit_factor_uplift"))),
        f"drawdown_growth_h{h}": dg.MetadataValue.float(_evidence_float(ev.get("drawdown_growth"))),
        f"reverted_h{h}": dg.MetadataValue.float(
            float(any(x.decision.action == "revert" for x in reg.decisions))
        ),
    }


def _section(hf: HorizonFit, reg: Registration) -> str:
    w = hf.windows
    return (
        f"### h = {hf.horizon}: {reg.model_id} ({reg.status})\n\ntrain {w.train[0]}..{w.train[1]}, "
        f"validation {w.valid[0]}..{w.valid[1]}\n\n{importance_markdown(hf.fit.importance)}"
    )


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
    `features.daily` / `features.targets`, registers it in `models.registry` with its
    artifact under `$PM_HOME/models/`, and writes gain and permutation importance to
    `models.feature_importance`.

    Windows end at the latest realized label: validation = the last `valid_months` of labelled
    dates, training = `train_years` before it, purged of labels that end inside validation.
    The score is calibrated to an h-session log return with split-conformal 80/95 % intervals on
    the validation window. Governance decides the champion (`model_code/governance.py`): the
    new model's out-of-fold record (purged walk-forward folds of its configuration) must beat
    the champion's stored record (or, with no usable champion, the random walk) with DM p < 0.05,
    DSR >= 0.95, profit factor +3 % and drawdown growth <= 50 %; otherwise it is registered as a
    challenger, and with no champion the family abstains (`ml/predictions` then says why). A
    champion that was promoted over an earlier one reverts to it when significantly worse on the
    dates since its promotion. Every decision goes to `models.decisions`; the metadata shows the
    latest ones. Models expire `expiry_days` after training.

    Read the metadata per horizon `h`: validation and out-of-fold rank IC (charted across
    runs), `status_h<h>` and the gate's numbers, `importance_plot_h<h>` and
    `importance_table_h<h>`, and `warning_h<h>` when a champion's validation rank IC is negative;
    `registrations` lists every model this run registered.
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
    # Train every horizon with the warehouse closed (the file stays free for readers while
    # LightGBM runs), then open it once to register everything in one transaction.
    began = time.perf_counter()
    fits = train_horizons(
        features,
        targets,
        config.horizons,
        train_years=config.train_years,
        valid_months=config.valid_months,
        family=config.family,  # type: ignore[arg-type]
        label=config.label,
        label_transform=config.label_transform,  # type: ignore[arg-type]
        seed=config.seed,
        params=_params(config),
        importance_repeats=config.importance_repeats,
        governance_folds=config.governance_folds,
        on_trained=lambda hf: context.log.info("ml/model h=%d trained in %.1fs", hf.horizon, hf.seconds),
    )
    training_seconds = time.perf_counter() - began
    with warehouse.open() as wh:
        registrations = register_fits(wh, fits, expiry_days=config.expiry_days, recent=(features, targets))
        decisions = latest_decisions(wh, config.family, limit=4 * len(config.horizons))
    metadata: dict[str, dg.MetadataValue] = {}
    for hf, reg in zip(fits, registrations, strict=True):
        context.log.info(
            "ml/model h=%d: %s registered as %s (%s)", hf.horizon, reg.model_id, reg.status, reg.reason
        )
        metadata |= _horizon_metadata(hf, reg)
    sections = [_section(hf, reg) for hf, reg in zip(fits, registrations, strict=True)]
    return dg.MaterializeResult(
        metadata={
            **metadata,
            "horizons_trained": dg.MetadataValue.float(float(len(fits))),
            "horizons_promoted": dg.MetadataValue.float(
                float(sum(r.status == "champion" for r in registrations))
            ),
            "horizons_abstaining": dg.MetadataValue.float(
                float(sum(r.decision is not None and r.decision.action == "abstain" for r in registrations))
            ),
            "decisions": dg.MetadataValue.md(decisions_markdown(decisions)),
            "training_seconds": dg.MetadataValue.float(training_seconds),
            "training_rows_read": dg.MetadataValue.float(float(features.height)),
            "feature_importance": dg.MetadataValue.md("\n\n".join(sections)),
            "registrations": table(
                pl.DataFrame(
                    {
                        "horizon": [hf.horizon for hf in fits],
                        "model_id": [r.model_id for r in registrations],
                        "status": [r.status for r in registrations],
                        "valid_rank_ic": [float(hf.fit.metrics["rank_ic"]) for hf in fits],
                        "oof_rank_ic": [float(hf.fit.metrics["oof_rank_ic"]) for hf in fits],
                        "reason": [r.reason[:200] for r in registrations],
                    }
                )
            ),
        }
    )
