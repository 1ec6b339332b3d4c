"""An ML model's out-of-sample record for governance: per-date losses and the strategy it drives.

The gate (:mod:`model_code.governance`) compares records on the same dates. For the ML
forecasters:

* the **loss** of a date is ``1 - Rank IC``: one minus the Spearman correlation of the scores
  with the realized h-session log returns ``fwd_ret_h`` across that date's tickers. The models
  rank tickers (labels ranked per date), so the loss scores the ranking, in no return unit; a
  constant forecast (the random walk, predict 0) ranks nothing and scores 1 every date;
* the **strategy** is long the top quintile of the scores, equal weight, rebalanced daily, on
  the next session's simple return (``expm1(fwd_ret_1)``); the random walk holds the
  equal-weight universe (:func:`~model_code.governance.top_quantile_returns`).

:func:`out_of_fold_scores` gives a newly trained model's scores out of fold: purged walk-forward
folds (:class:`~model_code.ml.cv.PurgedWalkForward`, purge = horizon, embargo 1) over its
training and validation span, each fold a fresh fit of the same family, label and parameters
on the earlier, purged rows. Only two things are shared with the final fit: the normalizer's
fill values (for missing features) and LightGBM's tree count, both chosen on the training and
validation windows. :func:`score_track` turns any ``(ticker, date, score)`` frame into the
per-date record; :func:`artifact_scores` scores stored models over later dates (the revert
check). No Dagster imports here.
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from model_code.governance import Record, build_record, top_quantile_returns
from model_code.ml.cv import PurgedWalkForward
from model_code.ml.dataset import LABEL_END, Panel, build_panel, sample_weights
from model_code.ml.metrics import daily_rank_ic
from model_code.ml.training import TrainedModel, Window, new_model, transform_label

KEYS = ["ticker", "date"]
DEFAULT_FOLDS = 3
TRACK_FILE = "track_record.parquet"
RANDOM_WALK = "random_walk"
TRACK_SCHEMA: dict[str, pl.DataType] = {
    "date": pl.Date(),
    "loss": pl.Float64(),
    "ret": pl.Float64(),
    "base_loss": pl.Float64(),
    "base_ret": pl.Float64(),
}


def _next_session_return(targets: pl.DataFrame, horizon: int) -> pl.Expr:
    """The next session's simple return: from fwd_ret_1, else the h-session one spread evenly."""
    if "fwd_ret_1" in targets.columns:
        return pl.col("fwd_ret_1").exp() - 1.0
    return (pl.col(f"fwd_ret_{horizon}") / horizon).exp() - 1.0


def score_track(scores: pl.DataFrame, targets: pl.DataFrame, horizon: int) -> pl.DataFrame:
    """:data:`TRACK_SCHEMA` per date of ``scores`` (``ticker, date, score``) whose h-session
    labels are realized in ``targets``: the model's loss and strategy return, and the random
    walk's (loss 1, the equal-weight universe's return)."""
    y = f"fwd_ret_{horizon}"
    frame = (
        scores.select(pl.col("ticker"), pl.col("date").cast(pl.Date), pl.col("score").cast(pl.Float64))
        .join(
            targets.select(
                "ticker",
                pl.col("date").cast(pl.Date),
                pl.col(y),
                _next_session_return(targets, horizon).alias("ret"),
            ),
            on=KEYS,
            how="inner",
        )
        .filter(pl.col(y).is_finite() & pl.col("ret").is_finite() & pl.col("score").is_finite())
    )
    if frame.height == 0:
        return pl.DataFrame(schema=TRACK_SCHEMA)
    dates = frame.select("date").unique()
    ric = daily_rank_ic(frame, "score", y).select("date", "ic")
    strat = top_quantile_returns(frame, score="score", ret="ret")
    base = frame.group_by("date").agg(pl.col("ret").mean().alias("base_ret"))
    return (
        dates.join(ric, on="date", how="left")
        .join(strat, on="date", how="left")
        .join(base, on="date", how="left")
        .select(
            "date",
            (1.0 - pl.col("ic").fill_null(0.0)).alias("loss"),
            "ret",
            pl.lit(1.0).alias("base_loss"),
            "base_ret",
        )
        .sort("date")
        .cast(TRACK_SCHEMA)  # type: ignore[arg-type]
    )


def out_of_fold_scores(
    trained: TrainedModel,
    features: pl.DataFrame,
    targets: pl.DataFrame,
    *,
    span: Window,
    family: str,
    label: str,
    label_transform: str,
    seed: int = 0,
    params: dict[str, Any] | None = None,
    n_folds: int = DEFAULT_FOLDS,
) -> pl.DataFrame:
    """``(ticker, date, score, fold)`` out of fold over ``span`` (see module docs); empty when
    ``span`` is too short to hold ``n_folds`` purged folds."""
    cols, h = trained.feature_columns, trained.horizon
    frame = (
        features.with_columns(pl.col("date").cast(pl.Date))
        .filter(pl.col("date").is_between(*span))
        .select(*KEYS, *cols)
        .sort("date", "ticker")
    )
    normed = trained.normalizer.transform(Panel(frame, cols, h))
    panel = build_panel(normed.frame, targets, h, label=label, feature_columns=cols)
    panel = Panel(
        transform_label(panel.frame, label_transform).filter(pl.col(LABEL_END) <= span[1]),  # type: ignore[arg-type]
        cols,
        h,
        panel.label_source,
    )
    fold_params = dict(params or {})
    if family == "lgbm_regressor":
        fold_params["n_estimators"] = max(1, int(trained.valid_metrics.get("best_iteration") or 0) or 1)
    out = []
    try:
        folds = list(PurgedWalkForward(n_folds, embargo=1).folds(panel))
    except ValueError:
        return pl.DataFrame(
            schema={"ticker": pl.String, "date": pl.Date, "score": pl.Float64, "fold": pl.Int64}
        )
    for fold in folds:
        tr, te = panel.take(fold.train_idx), panel.take(fold.test_idx)
        model = new_model(family, seed, fold_params).fit(  # type: ignore[arg-type]
            tr.feature_matrix(), tr.labels(), sample_weight=sample_weights(tr)
        )
        score = np.asarray(model.predict(te.feature_matrix()), dtype=np.float64)
        out.append(
            te.frame.select(*KEYS).with_columns(pl.Series("score", score), pl.lit(fold.fold).alias("fold"))
        )
    if not out:
        return pl.DataFrame(
            schema={"ticker": pl.String, "date": pl.Date, "score": pl.Float64, "fold": pl.Int64}
        )
    return pl.concat(out)


def artifact_scores(model: Any, features: pl.DataFrame) -> pl.DataFrame:
    """``(ticker, date, score)`` of a stored :class:`~model_code.ml.forecasts.ReturnForecaster`
    (its raw score; the ranking is what the loss scores) over every row of ``features``."""
    fc = model.forecast(features)
    col = "score" if "score" in fc.columns else "yhat"
    return fc.select("ticker", pl.col("date").cast(pl.Date), pl.col(col).cast(pl.Float64).alias("score"))


def records(
    tracks: dict[str, pl.DataFrame],
    *,
    horizon: int,
    trial_sharpes: list[float] | None = None,
    baseline: bool = False,
) -> dict[str, Record]:
    """Governance records of the named tracks on their common dates (an inner join), plus the
    random walk's (``random_walk``) when ``baseline``; ``horizon_steps`` = ``horizon`` since
    consecutive dates' h-session labels overlap."""
    names = list(tracks)
    if not names:
        return {}
    joined = None
    for name in names:
        t = tracks[name].select(
            "date", pl.col("loss").alias(f"loss:{name}"), pl.col("ret").alias(f"ret:{name}")
        )
        if baseline and joined is None:
            t = t.join(tracks[name].select("date", "base_loss", "base_ret"), on="date")
        joined = t if joined is None else joined.join(t, on="date", how="inner")
    assert joined is not None
    joined = joined.sort("date")
    out = {
        name: build_record(
            name,
            joined[f"loss:{name}"].to_numpy(),
            joined[f"ret:{name}"].fill_null(math.nan).to_numpy(),
            trial_sharpes=trial_sharpes,
            horizon_steps=horizon,
        )
        for name in names
    }
    if baseline:
        out[RANDOM_WALK] = build_record(
            RANDOM_WALK,
            joined["base_loss"].to_numpy(),
            joined["base_ret"].fill_null(math.nan).to_numpy(),
            horizon_steps=horizon,
        )
    return out


def common_dates(tracks: dict[str, pl.DataFrame]) -> tuple[dt.date | None, dt.date | None, int]:
    """First date, last date and number of dates the tracks share."""
    dates = None
    for t in tracks.values():
        s = set(t["date"].to_list())
        dates = s if dates is None else dates & s
    if not dates:
        return None, None, 0
    return min(dates), max(dates), len(dates)


def save_track(folder: str | Path, track: pl.DataFrame) -> Path:
    path = Path(folder) / TRACK_FILE
    track.write_parquet(path)
    return path


def load_track(folder: str | Path) -> pl.DataFrame | None:
    """The out-of-fold track stored beside a model's artifact, or None (models registered
    before governance, or by hand)."""
    path = Path(folder) / TRACK_FILE
    return pl.read_parquet(path) if path.is_file() else None
