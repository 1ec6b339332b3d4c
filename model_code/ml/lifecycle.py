"""The production ML model's life: windows, training, promotion and point-in-time use.

* :func:`known_at` cuts features and targets to what was known at the close of a session.
* :func:`training_windows` places, per horizon, a validation window of ``valid_months`` ending
  at the latest date whose h-session label is realized, and a training window of
  ``train_years`` before it; :func:`~model_code.ml.training.train_horizon_model` then purges
  training rows whose label ends on or after the validation start.
* :func:`fit_forecaster` trains, calibrates to return units and conformal intervals
  (:mod:`model_code.ml.forecasts`) and measures gain + permutation importance, all on the
  validation window.
* governance (:mod:`model_code.governance`) decides the champion: each fit carries the
  out-of-fold record of its configuration (:mod:`model_code.ml.track_record`); the new model
  becomes champion only if that record clears the gate against the champion's stored record
  (or, with no usable champion, or for a retrain of the champion's own configuration, against
  the random walk). With no champion and no candidate clearing the gate the family abstains.
  Before that, a champion that was promoted over an earlier one is checked against it on the
  dates since its promotion and reverted when significantly worse. Every decision is logged to
  ``models.decisions`` (:mod:`model_code.governance_store`).
* :func:`train_horizons` runs :func:`training_windows` + :func:`fit_forecaster` for every
  horizon and needs no warehouse; :func:`register_fits` then registers, promotes and writes the
  importance of all of them in one warehouse transaction, so the DuckDB file is held only for
  that write and a failure leaves no row and no artifact of the run behind.

No Dagster imports here.
"""

from __future__ import annotations

import calendar
import datetime as dt
import json
import math
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, get_args

import numpy as np
import polars as pl

from model_code.features import target_columns
from model_code.governance import (
    Decision,
    GateSettings,
    first_champion,
    promotion,
    record_summary,
    reversion,
    strategy_sharpe,
)
from model_code.governance_store import LoggedDecision, log_decisions, promoted_over
from model_code.ml.dataset import LABEL_END, Panel, build_panel
from model_code.ml.forecasts import ReturnForecaster, fit_calibration
from model_code.ml.importance import feature_importance, write_importance
from model_code.ml.registry import (
    ModelRegistry,
    RegistryRecord,
    feature_list_hash,
    load_artifact,
    model_id_of,
)
from model_code.ml.track_record import (
    DEFAULT_FOLDS,
    RANDOM_WALK,
    TRACK_SCHEMA,
    artifact_scores,
    common_dates,
    load_track,
    out_of_fold_scores,
    records,
    save_track,
    score_track,
)
from model_code.ml.training import (
    Family,
    LabelTransform,
    TrainedModel,
    Window,
    evaluate,
    train_horizon_model,
)
from model_code.warehouse import Warehouse

KEYS = ["ticker", "date"]
# The families ml/model trains (those fit_forecaster accepts).
FAMILIES: tuple[str, ...] = get_args(Family)
# Registry family -> the `model` name of its rows in forecasts.ml_predictions.
MODEL_NAMES: dict[str, str] = {"lgbm_regressor": "lgbm", "bayesian_ridge": "bayesian_ridge"}


@dataclass(frozen=True)
class TrainingWindows:
    """``train`` and ``valid`` (inclusive); ``last_labelled``: the latest date whose h-session
    label is realized; ``data_end``: the session on which that label closed (the last bar used)."""

    train: Window
    valid: Window
    last_labelled: dt.date
    data_end: dt.date


@dataclass(frozen=True, eq=False)
class FittedForecaster:
    """A trained :class:`ReturnForecaster`, its importance table, its validation metrics and
    its configuration's out-of-fold governance track (:data:`~model_code.ml.track_record.TRACK_SCHEMA`)."""

    forecaster: ReturnForecaster
    importance: pl.DataFrame
    metrics: dict[str, float]
    track: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=TRACK_SCHEMA))


def months_before(day: dt.date, months: int) -> dt.date:
    """The same day of the month ``months`` earlier (clamped to that month's last day)."""
    year, month0 = divmod(day.year * 12 + day.month - 1 - months, 12)
    return dt.date(year, month0 + 1, min(day.day, calendar.monthrange(year, month0 + 1)[1]))


def history_start(last: dt.date, *, train_years: float, valid_months: int, max_horizon: int) -> dt.date:
    """The earliest date :func:`training_windows` can reach when the data ends at ``last``: a
    reader may skip older rows. Generous by construction (two calendar days per session of
    horizon, a month of slack), since a late start would silently shorten training."""
    back = round(365.25 * train_years) + 2 * max_horizon + 31
    return months_before(last, valid_months) - dt.timedelta(days=back)


def known_at(
    features: pl.DataFrame, targets: pl.DataFrame, until: dt.date, horizons: Sequence[int]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Features and targets as known at the close of ``until``: rows dated after it dropped, and
    every horizon's label columns NULL where its target date is after ``until``."""
    feats = features.filter(pl.col("date") <= until)
    tg = targets.filter(pl.col("date") <= until)
    for h in horizons:
        late = pl.col(f"target_date_{h}") > until
        cols = [c for c in target_columns((h,))[1:] if c in tg.columns]
        tg = tg.with_columns(pl.when(late).then(None).otherwise(pl.col(c)).alias(c) for c in cols)
    return feats, tg


def training_windows(
    targets: pl.DataFrame, horizon: int, *, train_years: float, valid_months: int
) -> TrainingWindows:
    """Windows for ``horizon`` ending at the latest realized label (see module docs).

    The validation window runs from ``valid_months`` before the last labelled date to
    ``data_end``, so every realized label of those rows is usable (the purge keeps rows whose
    label ends by ``data_end``); training ends the day before validation starts.
    """
    if train_years <= 0 or valid_months <= 0:
        raise ValueError(f"train_years ({train_years}) and valid_months ({valid_months}) must be > 0")
    end_col, label = f"target_date_{horizon}", f"fwd_ret_{horizon}"
    done = targets.filter(pl.col(label).is_not_null() & pl.col(end_col).is_not_null())
    if done.height == 0:
        raise ValueError(f"no realized {label} label in the targets: nothing to train horizon {horizon} on")
    last = done["date"].max()
    data_end = done[end_col].max()
    valid_start = months_before(last, valid_months)
    train_start = valid_start - dt.timedelta(days=round(365.25 * train_years))
    first = targets["date"].min()
    if valid_start <= first:
        raise ValueError(
            f"horizon {horizon}: the {valid_months}-month validation window from {valid_start} leaves no "
            f"history to train on (data starts {first}); shorten valid_months"
        )
    train = (max(train_start, first), valid_start - dt.timedelta(days=1))
    return TrainingWindows(train, (valid_start, data_end), last, data_end)


def _validation_panel(
    trained: TrainedModel, features: pl.DataFrame, targets: pl.DataFrame, valid: Window
) -> Panel:
    """Validation rows normalized like at scoring time, labelled with the raw fwd_ret_h, kept
    when their label closed by the window end (the same purge as early stopping)."""
    cols = trained.feature_columns
    frame = (
        features.with_columns(pl.col("date").cast(pl.Date))
        .filter(pl.col("date").is_between(*valid))
        .select(*KEYS, *cols)
        .sort("date", "ticker")
    )
    normed = trained.normalizer.transform(Panel(frame, cols, trained.horizon))
    panel = build_panel(normed.frame, targets, trained.horizon, label="fwd_ret", feature_columns=cols)
    return Panel(panel.frame.filter(pl.col(LABEL_END) <= valid[1]), cols, panel.horizon, panel.label_source)


def fit_forecaster(
    features: pl.DataFrame,
    targets: pl.DataFrame,
    horizon: int,
    windows: TrainingWindows,
    *,
    family: Family = "lgbm_regressor",
    label: str = "fwd_ret_z",
    label_transform: LabelTransform = "cs_rank",
    seed: int = 0,
    params: dict[str, Any] | None = None,
    importance_repeats: int = 5,
    governance_folds: int = DEFAULT_FOLDS,
) -> FittedForecaster:
    """Train ``family`` for ``horizon`` on ``windows`` and wrap it as a return forecaster.

    ``metrics``: the validation metrics of the raw score (``rank_ic``, ``ic``, ... see
    :func:`~model_code.ml.training.evaluate`), ``hit`` replaced by the sign hit rate of the
    calibrated yhat (what is published; ``score_hit`` keeps the score's), the calibration summary
    and ``interval_coverage_80/95`` on the validation rows (in-sample for the conformal ranks:
    a check of the arithmetic, not of out-of-sample coverage). ``track``: the configuration's
    out-of-fold record over ``governance_folds`` purged walk-forward folds of the training and
    validation span (``oof_rank_ic``, ``oof_sharpe`` and ``oof_days`` summarize it in
    ``metrics``; ``oof_sharpe`` is what later models count as trials in their DSR).
    """
    trained = train_horizon_model(
        features,
        targets,
        horizon,
        train=windows.train,
        valid=windows.valid,
        family=family,
        label=label,
        label_transform=label_transform,
        seed=seed,
        params=params,
    )
    panel = _validation_panel(trained, features, targets, windows.valid)
    x, y = panel.feature_matrix(), panel.labels()
    score = np.asarray(trained.model.predict(x), dtype=np.float64)
    keyed = panel.frame.select(*KEYS)
    rv = (pl.col("rv_21") if "rv_21" in features.columns else pl.lit(None)).cast(pl.Float64).alias("rv")
    raw = features.select("ticker", pl.col("date").cast(pl.Date), rv)
    calibration = fit_calibration(
        keyed.with_columns(pl.Series("score", score), pl.Series("y", y)).join(
            raw, on=KEYS, how="left", maintain_order="left"
        ),
        horizon,
    )
    forecaster = ReturnForecaster(trained, calibration, windows.data_end, windows.train, windows.valid)
    fc = forecaster.forecast(features.filter(pl.col("date").cast(pl.Date).is_between(*windows.valid)))
    fc = fc.join(keyed.with_columns(pl.Series("y", y)), on=KEYS, how="inner")
    published = evaluate(fc.select(*KEYS, pl.col("yhat").alias("score")), targets, horizon)
    inside = {
        p: float(((fc["y"] >= fc[f"lower_{p}"]) & (fc["y"] <= fc[f"upper_{p}"])).mean() or math.nan)
        for p in (80, 95)
    }
    metrics = {
        **trained.valid_metrics,
        "score_hit": trained.valid_metrics["hit"],
        "hit": published["hit"],
        **calibration.summary(),
        "interval_coverage_80": inside[80],
        "interval_coverage_95": inside[95],
    }
    oof = out_of_fold_scores(
        trained,
        features,
        targets,
        span=(windows.train[0], windows.valid[1]),
        family=family,
        label=label,
        label_transform=label_transform,
        seed=seed,
        params=params,
        n_folds=governance_folds,
    )
    track = score_track(oof, targets, horizon)
    oof_record = records({"oof": track}, horizon=horizon)["oof"] if track.height else None
    metrics |= {
        "oof_rank_ic": float(1.0 - track["loss"].mean()) if track.height else math.nan,
        "oof_days": float(track.height),
        "oof_sharpe": _strategy_sharpe(track),
        "oof_dsr": oof_record.dsr if oof_record is not None else math.nan,
    }
    importance = feature_importance(
        trained.model,
        x,
        y,
        trained.feature_columns,
        groups=panel.frame["date"].to_numpy(),
        n_repeats=importance_repeats,
        seed=seed,
    )
    return FittedForecaster(replace(forecaster, metrics=metrics), importance, metrics, track)


def _strategy_sharpe(track: pl.DataFrame) -> float:
    return strategy_sharpe(track["ret"].drop_nulls().to_numpy()) if track.height else math.nan


def _finite(value: Any) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return math.nan
    return v if math.isfinite(v) else math.nan


@dataclass(frozen=True, eq=False)
class HorizonFit:
    """One horizon's training windows, fitted forecaster and training wall time in seconds."""

    horizon: int
    windows: TrainingWindows
    fit: FittedForecaster
    seconds: float


@dataclass(frozen=True)
class Registration:
    """Where :func:`register_fits` put one horizon's model: its registry id, ``champion`` or
    ``challenger``, the governance reason, and every decision logged for the horizon (a revert
    check first when there was one, then the gate's decision on the new model)."""

    horizon: int
    model_id: str
    status: str
    reason: str
    decisions: tuple[LoggedDecision, ...] = ()

    @property
    def decision(self) -> Decision | None:
        """The gate's decision on the new model."""
        return self.decisions[-1].decision if self.decisions else None


def train_horizons(
    features: pl.DataFrame,
    targets: pl.DataFrame,
    horizons: Sequence[int],
    *,
    train_years: float,
    valid_months: int,
    family: Family = "lgbm_regressor",
    label: str = "fwd_ret_z",
    label_transform: LabelTransform = "cs_rank",
    seed: int = 0,
    params: dict[str, Any] | None = None,
    importance_repeats: int = 5,
    governance_folds: int = DEFAULT_FOLDS,
    on_trained: Callable[[HorizonFit], None] | None = None,
) -> list[HorizonFit]:
    """Place the windows of and fit one return forecaster per horizon, in ``horizons`` order.

    ``features``/``targets`` are ``features.daily``/``features.targets`` rows (already cut by
    :func:`known_at` when training as of a past close); ``train_years`` and ``valid_months``
    size the windows (:func:`training_windows`), the rest goes to :func:`fit_forecaster`.
    ``on_trained`` is called after each horizon (e.g. to log progress). Nothing is written.
    """
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")
    fits = []
    for h in horizons:
        began = time.perf_counter()
        windows = training_windows(targets, h, train_years=train_years, valid_months=valid_months)
        fit = fit_forecaster(
            features,
            targets,
            h,
            windows,
            family=family,
            label=label,
            label_transform=label_transform,
            seed=seed,
            params=params,
            importance_repeats=importance_repeats,
            governance_folds=governance_folds,
        )
        fits.append(HorizonFit(h, windows, fit, time.perf_counter() - began))
        if on_trained is not None:
            on_trained(fits[-1])
    return fits


def _same_configuration(champion: RegistryRecord, fc: ReturnForecaster) -> bool:
    """A retrain of the champion's own configuration (family, parameters incl. label, features)."""
    params = json.loads(json.dumps(fc.params, sort_keys=True, default=str))
    return (
        champion.family == fc.family
        and champion.feature_list_hash == feature_list_hash(fc.feature_columns)
        and champion.params == params
    )


def _unusable(champion: RegistryRecord | None, now: dt.datetime) -> str | None:
    """Why ``champion`` cannot be the incumbent (None when it can)."""
    if champion is None:
        return "no earlier champion"
    if champion.expired(now):
        return f"champion {champion.model_id} expired at {champion.expires_at:%Y-%m-%d %H:%M} UTC"
    if "cal_slope" not in champion.cv_metrics:
        return f"champion {champion.model_id} is not a return forecaster"
    return None


def _prefixed(decision: Decision, prefix: str) -> Decision:
    return replace(decision, reasons=(prefix, *decision.reasons))


def govern(
    model_id: str,
    track: pl.DataFrame,
    champion: RegistryRecord | None,
    fc: ReturnForecaster,
    *,
    horizon: int,
    trial_sharpes: list[float],
    now: dt.datetime,
    artifact_root: Path,
    settings: GateSettings | None = None,
) -> tuple[Decision, dict[str, Any]]:
    """The gate's decision on a new model (named ``model_id``) with out-of-fold ``track``, and
    the context logged beside its evidence.

    Against the champion's stored out-of-fold track on their common dates; against the random
    walk on the new model's dates when there is no usable champion (``first_champion``:
    promote or ``abstain``), when the new model retrains the champion's own configuration (a
    refresh must clear the same gate the champion once did) or when the champion has no stored
    track (registered before governance).
    """
    why = _unusable(champion, now)
    tracks = {model_id: track}
    if why is not None:
        recs = records(tracks, horizon=horizon, trial_sharpes=trial_sharpes, baseline=True)
        decision = first_champion([recs[model_id]], recs[RANDOM_WALK], settings)
        if decision.action == "abstain":
            evidence = promotion(recs[model_id], recs[RANDOM_WALK], settings).evidence
            decision = replace(decision, subject=model_id, evidence=evidence)
        decision = _prefixed(decision, why)
    else:
        assert champion is not None
        champ_track = load_track(artifact_root / champion.model_id)
        if champ_track is None:
            champ_track = load_track(Path(champion.artifact_path))
        if champ_track is None or _same_configuration(champion, fc):
            recs = records(tracks, horizon=horizon, trial_sharpes=trial_sharpes, baseline=True)
            decision = promotion(recs[model_id], recs[RANDOM_WALK], settings)
            note = (
                f"retrain of champion {champion.model_id}'s configuration: gated against the random walk"
                if champ_track is not None
                else f"champion {champion.model_id} has no stored record: gated against the random walk"
            )
            decision = _prefixed(decision, note)
        else:
            tracks[champion.model_id] = champ_track
            recs = records(tracks, horizon=horizon, trial_sharpes=trial_sharpes)
            decision = promotion(recs[model_id], recs[champion.model_id], settings)
    first, last, n = common_dates(tracks)
    context = {"window_start": first, "window_end": last, "dates": n}
    context |= {f"{name}_{k}": v for name, rec in recs.items() for k, v in _summary(rec).items()}
    return decision, context


def _summary(rec: Any) -> dict[str, float]:
    return record_summary(rec)


def revert_check(
    champion: RegistryRecord,
    previous: RegistryRecord,
    features: pl.DataFrame,
    targets: pl.DataFrame,
    *,
    artifact_root: Path,
    settings: GateSettings | None = None,
) -> tuple[Decision, dict[str, Any]] | None:
    """Reversion of ``champion`` to ``previous`` (the champion it was promoted over): both
    stored artifacts score the feature rows dated after the champion's ``data_end`` (out of
    sample for both), and their records are compared on the realized targets of those dates.
    None when there is nothing to compare (no later realized date, an artifact that is not a
    return forecaster, or features it cannot score)."""
    since = champion.cv_metrics.get("data_end")
    if since is None:
        return None
    later = features.filter(pl.col("date").cast(pl.Date) > dt.date.fromisoformat(str(since)))
    if later.height == 0:
        return None
    tracks = {}
    for rec in (champion, previous):
        try:
            model = load_artifact(rec, artifact_root)
            if not isinstance(model, ReturnForecaster):
                return None
            tracks[rec.model_id] = score_track(artifact_scores(model, later), targets, champion.horizon)
        except (FileNotFoundError, pl.exceptions.ColumnNotFoundError):
            return None
    recs = records(tracks, horizon=champion.horizon)
    decision = reversion(recs[champion.model_id], recs[previous.model_id], settings)
    first, last, n = common_dates(tracks)
    context = {"since": since, "window_start": first, "window_end": last, "dates": n}
    context |= {f"{name}_{k}": v for name, rec in recs.items() for k, v in _summary(rec).items()}
    return decision, context


def register_fits(
    warehouse: Warehouse,
    fits: Sequence[HorizonFit],
    *,
    expiry_days: float | None,
    registry: ModelRegistry | None = None,
    now: dt.datetime | None = None,
    recent: tuple[pl.DataFrame, pl.DataFrame] | None = None,
    settings: GateSettings | None = None,
) -> list[Registration]:
    """Register every fit, champion only when governance promotes it (see module docs), write
    its importance to ``models.feature_importance``, its out-of-fold track beside its artifact
    and every decision to ``models.decisions``, all in one transaction on ``warehouse``.

    ``recent``: the (features, targets) the fits were trained on; with it, a champion that was
    promoted over an earlier model is first checked for reversion on the dates since its
    promotion. Each horizon's champion is read inside the transaction. ``expiry_days``: days
    after ``now`` (default: the current UTC time, naive) when the models expire (None: never).
    ``registry`` defaults to one on ``warehouse`` with artifacts under ``$PM_HOME/models``. On
    any failure the transaction rolls back (previous champions stay champions) and the artifact
    folders this call wrote are removed.
    """
    registry = registry or ModelRegistry(warehouse)
    now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    done: list[Registration] = []
    written: list[str] = []  # model ids whose artifact folder is in place
    try:
        with warehouse.transaction():
            for hf in fits:
                done.append(
                    _register_one(warehouse, registry, hf, expiry_days, now, recent, settings, written)
                )
    except BaseException:
        # The rows rolled back; their artifact folders were already renamed into place.
        for model_id in written:
            shutil.rmtree(registry.artifact_root / model_id, ignore_errors=True)
        raise
    return done


def _register_one(
    warehouse: Warehouse,
    registry: ModelRegistry,
    hf: HorizonFit,
    expiry_days: float | None,
    now: dt.datetime,
    recent: tuple[pl.DataFrame, pl.DataFrame] | None,
    settings: GateSettings | None,
    written: list[str],
) -> Registration:
    fc, windows, h = hf.fit.forecaster, hf.windows, hf.horizon
    logged: list[LoggedDecision] = []
    champion = registry.champion(fc.family, h)
    if champion is not None and recent is not None and _unusable(champion, now) is None:
        previous_id = promoted_over(warehouse, fc.family, h, champion.model_id)
        if previous_id is not None and previous_id != RANDOM_WALK:
            previous = next((r for r in registry.records(fc.family, h) if r.model_id == previous_id), None)
            checked = (
                revert_check(
                    champion, previous, *recent, artifact_root=registry.artifact_root, settings=settings
                )
                if previous is not None
                else None
            )
            if checked is not None:
                decision, context = checked
                logged.append(LoggedDecision(decision, fc.family, h, now, context.get("window_end"), context))
                if decision.action == "revert":
                    registry.promote(previous.model_id, as_of=now)  # type: ignore[union-attr]
                    champion = registry.record(previous.model_id)  # type: ignore[union-attr]
    model_id = model_id_of(fc, h, windows.train[0], windows.train[1], fc.feature_columns, now)
    trials = [
        float(r.cv_metrics["oof_sharpe"])
        for r in registry.records(fc.family, h)
        if isinstance(r.cv_metrics.get("oof_sharpe"), int | float)
        and math.isfinite(r.cv_metrics["oof_sharpe"])
    ]
    decision, context = govern(
        model_id,
        hf.fit.track,
        champion,
        fc,
        horizon=h,
        trial_sharpes=trials,
        now=now,
        artifact_root=registry.artifact_root,
        settings=settings,
    )
    status = "champion" if decision.action == "promote" else "challenger"
    registered = registry.register(
        fc,
        horizon=h,
        train_start=windows.train[0],
        train_end=windows.train[1],
        feature_list=fc.feature_columns,
        cv_metrics={
            **hf.fit.metrics,
            "valid_start": windows.valid[0],
            "valid_end": windows.valid[1],
            "data_end": windows.data_end,
        },
        status=status,
        ttl_days=expiry_days,
        trained_at=now,
    )
    written.append(registered)
    assert registered == model_id, (registered, model_id)
    save_track(registry.artifact_root / model_id, hf.fit.track)
    write_importance(warehouse, model_id, hf.fit.importance)
    logged.append(LoggedDecision(decision, fc.family, h, now, windows.data_end, context))
    log_decisions(warehouse, logged)
    return Registration(h, model_id, status, decision.reason, tuple(logged))
