"""Train one horizon's model on a train window, early-stopped on a validation window, and score.

:func:`train_horizon_model` (all windows inclusive ``(start, end)`` dates):

1. optional regime features: a :class:`~model_code.ml.regime.RegimeModel` fitted on the market
   series of the train window only; its FILTERED state probabilities ``p_state_j`` (per date,
   point in time) are appended as pass-through features;
2. features are normalized per date (robust z-score of the float features) by a
   :class:`~model_code.ml.dataset.CrossSectionalNormalizer` whose fill values are fitted on the
   train window only, on full cross-sections (rows without a label included), exactly as
   :func:`predict` does later;
3. the label (``fwd_ret`` log return or ``fwd_ret_z`` vol-scaled) is optionally ranked within
   each date (``label_transform="cs_rank"``: uniform in (-0.5, 0.5)), which removes the
   market-wide move a cross-sectional ranker cannot predict;
4. PURGE: training rows need ``label_end < valid start``; validation rows need ``label_end <=
   valid end``, so no label used for fitting or early stopping is realized after the window;
5. LightGBM stops early on the validation L2 loss; each fit is logged to a ``TrialLog`` with its
   validation scores (:func:`evaluate`: daily IC / Rank IC against the raw ``fwd_ret_h``, etc.).

No Dagster imports here.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import polars as pl

from model_code.evaluation.diebold_mariano import long_run_variance
from model_code.ml.cv import TrialLog
from model_code.ml.dataset import (
    LABEL,
    LABEL_END,
    CrossSectionalNormalizer,
    Panel,
    build_panel,
    sample_weights,
)
from model_code.ml.metrics import daily_ic, daily_rank_ic, ic_summary, quantile_spread_by_date
from model_code.ml.models import BayesianRidgeModel, LgbmRegressor
from model_code.ml.regime import RegimeModel

Window = tuple[dt.date, dt.date]
Family = Literal["lgbm_regressor", "bayesian_ridge"]
LabelTransform = Literal["none", "cs_rank"]
REGIME_PREFIX = "p_state_"
KEYS = ["ticker", "date"]


@dataclass(frozen=True, eq=False)
class TrainedModel:
    """A fitted model with everything :func:`predict` needs to score new dates.

    ``valid_metrics``: :func:`evaluate` on the validation window (``rank_ic`` = mean daily Spearman
    vs the raw fwd_ret_h, ``rank_ic_t``, ``hit``, ...), plus ``best_iteration`` (trees kept; 0 for
    linear models) and row counts. ``train_label_end_max``: the latest label end among training
    rows, before the validation start by construction (purge audit).
    """

    model: Any
    normalizer: CrossSectionalNormalizer
    feature_columns: tuple[str, ...]
    horizon: int
    valid_metrics: dict[str, float]
    config: dict[str, Any] = field(default_factory=dict)
    regime: RegimeModel | None = None
    train_label_end_max: dt.date | None = None


def _regime_frame(regime: RegimeModel, market: pl.DataFrame) -> pl.DataFrame:
    probs = regime.state_probabilities(market)
    return probs.with_columns(pl.col("date").cast(pl.Date))


def _features_panel(
    features: pl.DataFrame,
    columns: tuple[str, ...],
    horizon: int,
    regime: RegimeModel | None,
    market: pl.DataFrame | None,
) -> Panel:
    """Features (plus regime probabilities by date) as a label-less, (date, ticker)-sorted Panel."""
    frame = features.with_columns(pl.col("date").cast(pl.Date))
    if regime is not None:
        if market is None:
            raise ValueError("this model uses regime features: pass the market frame")
        frame = frame.join(_regime_frame(regime, market), on="date", how="left")
    return Panel(frame.select(*KEYS, *columns).sort("date", "ticker"), columns, horizon)


def transform_label(frame: pl.DataFrame, how: LabelTransform) -> pl.DataFrame:
    """The training label as ``how`` transforms it: ``none``, or ``cs_rank`` (rank per date, in (-0.5, 0.5))."""
    if how == "none":
        return frame
    if how != "cs_rank":
        raise ValueError(f"unknown label_transform {how!r}")
    rank = (pl.col(LABEL).rank("average") - 0.5) / pl.len() - 0.5
    return frame.with_columns(rank.over("date").alias(LABEL))


def new_model(family: Family, seed: int, params: dict[str, Any] | None) -> Any:
    """An unfitted model of ``family`` with ``params`` over the family defaults."""
    if family == "lgbm_regressor":
        return LgbmRegressor(seed=seed, **(params or {}))
    if family == "bayesian_ridge":
        return BayesianRidgeModel(**(params or {}))
    raise ValueError(f"unknown family {family!r}")


def newey_west_t(values: np.ndarray, lags: int) -> float:
    """t-statistic of the mean with a Bartlett-kernel (Newey-West) s.e.; overlapping h-day labels
    make daily ICs autocorrelated up to lag h-1, which the plain t ignores."""
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if x.size < 3:
        return math.nan
    s = long_run_variance(x, lags, kernel="bartlett")
    return float(x.mean() / math.sqrt(s / x.size)) if s > 0 else math.nan


def daily_hit(frame: pl.DataFrame, pred: str, label: str) -> tuple[float, float, int]:
    """Mean over dates of the share of rows with sign(pred) == sign(label) (zero labels skipped),
    its s.e. across dates (std / sqrt(days)) and the number of dates."""
    per_day = (
        frame.filter(pl.col(label).is_finite() & (pl.col(label) != 0) & pl.col(pred).is_finite())
        .group_by("date")
        .agg((pl.col(pred).sign() == pl.col(label).sign()).mean().alias("hit"))["hit"]
        .to_numpy()
    )
    if per_day.size < 2:
        return math.nan, math.nan, int(per_day.size)
    return float(per_day.mean()), float(per_day.std(ddof=1) / math.sqrt(per_day.size)), int(per_day.size)


def evaluate(
    scores: pl.DataFrame, targets: pl.DataFrame, horizon: int, window: Window | None = None
) -> dict[str, float]:
    """Per-date metrics of ``score`` (rows dated in ``window``) against the raw h-bar log return
    ``fwd_ret_{h}``: IC, Rank IC (+ s.d., ICIR, t, Newey-West t), daily hit ± s.e., Q5-Q1 spread
    (h-bar log return, + t and Newey-West t), ``days`` and ``ranked_days`` (nonzero Rank IC)."""
    y = f"fwd_ret_{horizon}"
    frame = (
        (scores if window is None else scores.filter(pl.col("date").is_between(*window)))
        .join(targets.select("ticker", "date", y), on=["ticker", "date"], how="inner")
        .filter(pl.col(y).is_not_null())
    )
    # A date on which the model gives every ticker the same score ranks nothing: IC 0, not dropped.
    dates = frame.filter(pl.len().over("date") >= 2).select("date").unique().sort("date")
    ic_series, ric_series = (
        dates.join(f(frame, "score", y), on="date", how="left")["ic"].fill_null(0.0).to_numpy()
        for f in (daily_ic, daily_rank_ic)
    )
    ic, ric = ic_summary(ic_series), ic_summary(ric_series)
    hit, hit_se, hit_days = daily_hit(frame, "score", y)
    by_date = quantile_spread_by_date(frame, "score", y, 5)
    spread = dates.join(by_date, on="date", how="left")["spread"].fill_null(0.0).to_numpy()
    q = ic_summary(spread)
    out = {"ic": ic["mean"], "icir": ic["icir"], "ic_t": ic["t_stat"], "rank_ic": ric["mean"]}
    out |= {"rank_ic_sd": ric["std"], "rank_icir": ric["icir"], "rank_ic_t": ric["t_stat"]}
    # Labels of dates closer than h sessions overlap: lags = ceil(h / spacing) - 1 (h - 1 for daily).
    gaps = np.diff(dates["date"].to_numpy().astype("datetime64[D]").astype(np.int64))
    step = max(1, round(float(np.median(gaps)) * 252 / 365)) if gaps.size else 1
    lags = max(0, math.ceil(horizon / step) - 1)
    out |= {"rank_ic_t_nw": newey_west_t(ric_series, lags), "hit": hit, "hit_se": hit_se}
    out |= {"q_spread": q["mean"], "q_t": q["t_stat"], "q_t_nw": newey_west_t(spread, lags)}
    return out | {"days": float(dates.height or hit_days), "ranked_days": float(np.count_nonzero(ric_series))}


def train_horizon_model(
    features: pl.DataFrame,
    targets: pl.DataFrame,
    horizon: int,
    *,
    train: Window,
    valid: Window,
    family: Family = "lgbm_regressor",
    label: str = "fwd_ret_z",
    label_transform: LabelTransform = "cs_rank",
    market: pl.DataFrame | None = None,
    seed: int = 0,
    params: dict[str, Any] | None = None,
    trial_log: TrialLog | None = None,
    shuffle_labels: bool = False,
) -> TrainedModel:
    """Fit one horizon's model on ``train``, early-stopped (LightGBM) on ``valid``.

    Args:
        features: ``build_daily_features`` output (every non-key column is a feature).
        targets: ``build_targets`` output with ``target_date_{h}``, ``fwd_ret_{h}[_z]``.
        label: ``fwd_ret`` (h-bar log return) or ``fwd_ret_z`` (return / (vol_21 * sqrt(h))).
        market: ``market_regime_inputs`` frame; when given, regime features are added.
        params: model hyperparameters overriding the family defaults.
        shuffle_labels: permute labels within each training date (leakage check: the model
            must then have no skill out of sample).
    """
    if train[1] >= valid[0] or valid[0] > valid[1]:
        raise ValueError(f"train {train} must end before valid {valid} starts")
    columns = tuple(c for c in features.columns if c not in KEYS)
    regime = None
    if market is not None:
        mk = market.with_columns(pl.col("date").cast(pl.Date))
        regime = RegimeModel(2, "hmm", seed).fit(mk.filter(pl.col("date").is_between(*train)))
        columns += tuple(f"{REGIME_PREFIX}{j}" for j in range(regime.n_states))
    needed = features.filter(pl.col("date").cast(pl.Date).is_between(train[0], valid[1]))
    fpanel = _features_panel(needed, columns, horizon, regime, market)
    floats = tuple(
        c for c in columns if fpanel.frame.schema[c].is_float() and not c.startswith(REGIME_PREFIX)
    )
    normalizer = CrossSectionalNormalizer(floats).fit(fpanel.between(*train), *train)
    normed = normalizer.transform(fpanel)
    panel = build_panel(normed.frame, targets, horizon, label=label, feature_columns=columns)
    panel = Panel(transform_label(panel.frame, label_transform), columns, horizon, panel.label_source)
    in_train = pl.col("date").is_between(*train) & (pl.col(LABEL_END) < valid[0])
    in_valid = pl.col("date").is_between(*valid) & (pl.col(LABEL_END) <= valid[1])
    tr = Panel(panel.frame.filter(in_train), columns, horizon, panel.label_source)
    va = Panel(panel.frame.filter(in_valid), columns, horizon, panel.label_source)
    if tr.frame.height == 0 or va.frame.height == 0:
        raise ValueError(f"empty train ({tr.frame.height}) or valid ({va.frame.height}) rows after purge")
    y = tr.labels()
    if shuffle_labels:
        rng = np.random.default_rng(seed)
        codes = tr.frame["date"].to_physical().to_numpy()
        order = np.lexsort((rng.random(codes.size), codes))  # random order within each date
        y = y[order]  # rows are date-sorted, so labels stay on their own date
    x_va = va.feature_matrix()
    model = new_model(family, seed, params).fit(
        tr.feature_matrix(), y, sample_weight=sample_weights(tr), eval_set=(x_va, va.labels())
    )
    scores = va.frame.select(*KEYS).with_columns(pl.Series("score", model.predict(x_va)))
    metrics = evaluate(scores, targets, horizon)
    metrics.update(
        best_iteration=float(getattr(model, "best_iteration", None) or 0),
        train_rows=float(tr.frame.height),
        valid_rows=float(va.frame.height),
        purged_rows=float(panel.frame.filter(pl.col("date").is_between(*train)).height - tr.frame.height),
    )
    config = {
        "family": family,
        "horizon": horizon,
        "label": label,
        "label_transform": label_transform,
        "regime": regime is not None,
        "seed": seed,
        "shuffle_labels": shuffle_labels,
        **(params or {}),
    }
    if trial_log is not None:
        trial_log.record(family, {k: v for k, v in config.items() if k != "family"}, metrics, window=valid)
    label_end_max = tr.frame[LABEL_END].max()
    return TrainedModel(model, normalizer, columns, horizon, metrics, config, regime, label_end_max)


def predict(
    trained: TrainedModel, features: pl.DataFrame, market: pl.DataFrame | None = None
) -> pl.DataFrame:
    """``(ticker, date, score)`` for every feature row; higher = better expected relative return.

    Normalization uses each date's own cross-section and the train-window fill values only, so
    a date's scores depend on bars dated <= that date (given point-in-time ``features``).
    """
    base = [c for c in trained.feature_columns if not c.startswith(REGIME_PREFIX)]
    panel = _features_panel(
        features.select(*KEYS, *base), trained.feature_columns, trained.horizon, trained.regime, market
    )
    normed = trained.normalizer.transform(panel)
    score = trained.model.predict(normed.feature_matrix())
    return normed.frame.select(*KEYS).with_columns(pl.Series("score", np.asarray(score, dtype=np.float64)))
