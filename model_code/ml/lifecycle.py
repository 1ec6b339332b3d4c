"""The production ML model's life: windows, training, promotion and point-in-time use.

* :func:`known_at` cuts features and targets to what was known at the close of a session.
* :func:`training_windows` places, per horizon, a validation window of ``valid_months`` ending
  at the latest date whose h-session label is realized, and a training window of
  ``train_years`` before it; :func:`~model_code.ml.training.train_horizon_model` then purges
  training rows whose label ends on or after the validation start.
* :func:`fit_forecaster` trains, calibrates to return units and conformal intervals
  (:mod:`model_code.ml.forecasts`) and measures gain + permutation importance, all on the
  validation window.
* :func:`promotion_status`: the new model becomes champion when there is no usable champion for
  its (family, horizon) or its validation Rank IC is at least the champion's.
* :func:`train_horizons` runs :func:`training_windows` + :func:`fit_forecaster` for every
  horizon and needs no warehouse; :func:`register_fits` then registers, promotes and writes the
  importance of all of them in one warehouse transaction, so the DuckDB file is held only for
  that write and a failure leaves no row and no artifact of the run behind.

No Dagster imports here.
"""

from __future__ import annotations

import calendar
import datetime as dt
import math
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, get_args

import numpy as np
import polars as pl

from model_code.features import target_columns
from model_code.ml.dataset import LABEL_END, Panel, build_panel
from model_code.ml.forecasts import ReturnForecaster, fit_calibration
from model_code.ml.importance import feature_importance, write_importance
from model_code.ml.registry import ModelRegistry, RegistryRecord, feature_list_hash
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
    """A trained :class:`ReturnForecaster`, its importance table and its validation metrics."""

    forecaster: ReturnForecaster
    importance: pl.DataFrame
    metrics: dict[str, float]


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
) -> FittedForecaster:
    """Train ``family`` for ``horizon`` on ``windows`` and wrap it as a return forecaster.

    ``metrics``: the validation metrics of the raw score (``rank_ic``, ``ic``, ... see
    :func:`~model_code.ml.training.evaluate`), ``hit`` replaced by the sign hit rate of the
    calibrated yhat (what is published; ``score_hit`` keeps the score's), the calibration summary
    and ``interval_coverage_80/95`` on the validation rows (in-sample for the conformal ranks:
    a check of the arithmetic, not of out-of-sample coverage).
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
    importance = feature_importance(
        trained.model,
        x,
        y,
        trained.feature_columns,
        groups=panel.frame["date"].to_numpy(),
        n_repeats=importance_repeats,
        seed=seed,
    )
    return FittedForecaster(replace(forecaster, metrics=metrics), importance, metrics)


def _finite(value: Any) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return math.nan
    return v if math.isfinite(v) else math.nan


def promotion_status(
    rank_ic: float,
    champion: RegistryRecord | None,
    *,
    feature_list_hash: str,
    now: dt.datetime,
) -> tuple[str, str]:
    """``("champion" | "challenger", reason)`` for a new model with validation ``rank_ic``.

    The champion is unusable (so the new model takes its place) when it is expired at ``now``,
    scores another feature list, or is not a return forecaster (no calibration in its metrics).
    Otherwise the new model needs a validation Rank IC at least the champion's; a tie promotes
    the newer model, whose data and expiry are fresher. Note the two Rank ICs come from their
    own validation windows.
    """
    new = _finite(rank_ic)
    if champion is None:
        return "champion", "no champion yet"
    cid = champion.model_id
    if champion.expired(now):
        return "champion", f"champion {cid} expired at {champion.expires_at:%Y-%m-%d %H:%M} UTC"
    if champion.feature_list_hash != feature_list_hash:
        return "champion", f"champion {cid} scores another feature list"
    if "cal_slope" not in champion.cv_metrics:
        return "champion", f"champion {cid} has no return calibration"
    old = _finite(champion.cv_metrics.get("rank_ic"))
    if math.isnan(old):
        return "champion", f"champion {cid} has no validation Rank IC"
    if not math.isnan(new) and new >= old:
        return "champion", f"validation Rank IC {new:+.4f} >= champion {cid}'s {old:+.4f}"
    return "challenger", f"validation Rank IC {new:+.4f} < champion {cid}'s {old:+.4f}; champion kept"


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
    ``challenger``, and the reason :func:`promotion_status` gave."""

    horizon: int
    model_id: str
    status: str
    reason: str


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
        )
        fits.append(HorizonFit(h, windows, fit, time.perf_counter() - began))
        if on_trained is not None:
            on_trained(fits[-1])
    return fits


def register_fits(
    warehouse: Warehouse,
    fits: Sequence[HorizonFit],
    *,
    expiry_days: float | None,
    registry: ModelRegistry | None = None,
    now: dt.datetime | None = None,
) -> list[Registration]:
    """Register every fit, champion or challenger by :func:`promotion_status`, and write its
    importance to ``models.feature_importance``, all in one transaction on ``warehouse``.

    Each horizon's champion is read inside the transaction, just before its model is
    registered. ``expiry_days``: days after ``now`` (default: the current UTC time, naive) when
    the models expire (None: never). ``registry`` defaults to one on ``warehouse`` with
    artifacts under ``$PM_HOME/models``. On any failure the transaction rolls back (previous
    champions stay champions) and the artifact folders this call wrote are removed.
    """
    registry = registry or ModelRegistry(warehouse)
    now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    done: list[Registration] = []
    try:
        with warehouse.transaction():
            for hf in fits:
                fc, windows = hf.fit.forecaster, hf.windows
                status, reason = promotion_status(
                    hf.fit.metrics["rank_ic"],
                    registry.champion(fc.family, hf.horizon),
                    feature_list_hash=feature_list_hash(fc.feature_columns),
                    now=now,
                )
                model_id = registry.register(
                    fc,
                    horizon=hf.horizon,
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
                done.append(Registration(hf.horizon, model_id, status, reason))
                write_importance(warehouse, model_id, hf.fit.importance)
    except BaseException:
        # The rows rolled back; their artifact folders were already renamed into place.
        for reg in done:
            shutil.rmtree(registry.artifact_root / reg.model_id, ignore_errors=True)
        raise
    return done
