"""Feature importance: LightGBM split gain and seeded permutation importance on a validation set.

* ``gain``: the feature's share of the total split gain over the model's trees (sums to 1;
  NULL for models without trees).
* ``permutation``: mean loss of validation skill when the feature's column is shuffled,
  ``n_repeats`` times with a seeded generator: rank IC(base) - rank IC(shuffled) for
  ``scoring="rank_ic"`` (Spearman; the mean per-date IC when ``groups`` holds the dates),
  MSE(shuffled) - MSE(base) for ``"mse"``. Positive = the model relies on the feature.
  ``permutation_std`` is the std over repeats.

``importance_plot_png`` draws the permutation importance (with its std) as a small PNG bar chart
through ``model_code/reporting/plots.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np
import polars as pl

from model_code.reporting.plots import bar_chart
from model_code.warehouse import Warehouse

Scoring = Literal["rank_ic", "mse"]
IMPORTANCE_COLUMNS = ("feature", "gain", "permutation", "permutation_std")


def gain_importance(model: Any, features: Sequence[str]) -> pl.DataFrame:
    """``(feature, gain)``: share of total split gain per feature (NULL without a booster)."""
    booster = getattr(model, "booster", None)
    if booster is None:
        return pl.DataFrame(
            {"feature": list(features), "gain": [None] * len(features)},
            schema={"feature": pl.String, "gain": pl.Float64},
        )
    gain = np.asarray(booster.feature_importance(importance_type="gain"), dtype=np.float64)
    if gain.shape[0] != len(features):
        raise ValueError(f"model has {gain.shape[0]} features, {len(features)} names given")
    total = gain.sum()
    return pl.DataFrame({"feature": list(features), "gain": gain / total if total > 0 else gain})


def rank_ic(pred: np.ndarray, y: np.ndarray, groups: np.ndarray | None = None) -> float:
    """Spearman correlation of predictions and outcomes; mean per-group IC with ``groups``."""
    frame = pl.DataFrame({"p": np.asarray(pred, dtype=np.float64), "y": np.asarray(y, dtype=np.float64)})
    if groups is None:
        return float(frame.select(pl.corr("p", "y", method="spearman")).item() or 0.0)
    ics = (
        frame.with_columns(g=pl.Series(groups))
        .group_by("g", maintain_order=True)
        .agg(pl.corr("p", "y", method="spearman"))
    )
    return float(ics["p"].fill_nan(None).mean() or 0.0)


def _scorer(scoring: Scoring, groups: np.ndarray | None) -> Callable[[np.ndarray, np.ndarray], float]:
    """A higher-is-better score of (pred, y)."""
    if scoring == "rank_ic":
        return lambda p, y: rank_ic(p, y, groups)
    if scoring == "mse":
        return lambda p, y: -float(np.mean((np.asarray(p, dtype=np.float64) - y) ** 2))
    raise ValueError(f"scoring must be 'rank_ic' or 'mse', got {scoring!r}")


def permutation_importance(
    predict: Callable[[np.ndarray], np.ndarray],
    X: np.ndarray,
    y: np.ndarray,
    features: Sequence[str],
    *,
    scoring: Scoring = "rank_ic",
    groups: np.ndarray | None = None,
    n_repeats: int = 5,
    seed: int = 0,
) -> pl.DataFrame:
    """``(feature, permutation, permutation_std)`` on a validation window (see module docs).

    ``predict`` maps X to a score per row (e.g. ``model.predict`` or a classifier's
    ``predict_expected``). Deterministic for a given ``seed``.
    """
    x = np.asarray(X, dtype=np.float64)
    yv = np.asarray(y, dtype=np.float64)
    if x.shape[1] != len(features):
        raise ValueError(f"X has {x.shape[1]} columns, {len(features)} names given")
    score = _scorer(scoring, groups)
    base = score(predict(x), yv)
    rng = np.random.default_rng(seed)
    means, stds = [], []
    for j in range(x.shape[1]):
        drops = []
        saved = x[:, j].copy()
        for _ in range(n_repeats):
            x[:, j] = saved[rng.permutation(saved.shape[0])]
            drops.append(base - score(predict(x), yv))
        x[:, j] = saved
        means.append(float(np.mean(drops)))
        stds.append(float(np.std(drops)))
    return pl.DataFrame({"feature": list(features), "permutation": means, "permutation_std": stds})


def feature_importance(
    model: Any,
    X_val: np.ndarray,
    y_val: np.ndarray,
    features: Sequence[str],
    *,
    scoring: Scoring = "rank_ic",
    groups: np.ndarray | None = None,
    n_repeats: int = 5,
    seed: int = 0,
) -> pl.DataFrame:
    """``(feature, gain, permutation, permutation_std)``, most important (permutation) first.

    Classifiers are scored through ``predict_expected`` (probability-weighted label) when they
    have it, so the rank IC measures ranking skill rather than hard labels.
    """
    predict = getattr(model, "predict_expected", None) or model.predict
    perm = permutation_importance(
        predict, X_val, y_val, features, scoring=scoring, groups=groups, n_repeats=n_repeats, seed=seed
    )
    return (
        gain_importance(model, features)
        .join(perm, on="feature", how="left", maintain_order="left")
        .sort(["permutation", "gain"], descending=True, nulls_last=True)
        .select(IMPORTANCE_COLUMNS)
    )


def write_importance(warehouse: Warehouse, model_id: str, frame: pl.DataFrame) -> int:
    """Upsert ``frame`` into ``models.feature_importance`` for ``model_id``; returns rows written."""
    rows = frame.select(
        pl.lit(model_id).alias("model_id"),
        pl.col("feature").cast(pl.String),
        *[
            (pl.col(c) if c in frame.columns else pl.lit(None)).cast(pl.Float64).alias(c)
            for c in IMPORTANCE_COLUMNS[1:]
        ],
    )
    return warehouse.upsert("models.feature_importance", rows, ["model_id", "feature"])


def importance_markdown(frame: pl.DataFrame, *, column: str = "permutation", width: int = 30) -> str:
    """A markdown table of the importances with a text bar scaled to the largest ``column`` value."""
    values = frame[column].fill_null(0.0).to_numpy()
    top = float(np.max(np.abs(values))) if values.size else 0.0
    lines = ["| feature | gain | permutation | ± std | |", "|---|---:|---:|---:|---|"]
    for row, v in zip(frame.iter_rows(named=True), values, strict=True):
        bar = "█" * (round(width * max(v, 0.0) / top) if top > 0 else 0)

        def fmt(x: float | None) -> str:
            return "" if x is None else f"{x:.4g}"

        lines.append(
            f"| {row['feature']} | {fmt(row.get('gain'))} | {fmt(row.get('permutation'))} | "
            f"{fmt(row.get('permutation_std'))} | {bar} |"
        )
    return "\n".join(lines)


def importance_plot_png(
    frame: pl.DataFrame, *, title: str = "permutation importance (rank IC drop)"
) -> bytes:
    """PNG bytes of a horizontal bar chart of the permutation importance with std error bars,
    most important on top."""
    return bar_chart(
        frame["feature"].to_list(),
        frame["permutation"].fill_null(0.0).to_list(),
        errors=frame["permutation_std"].fill_null(0.0).to_list(),
        title=title,
        xlabel="score drop when shuffled",
    )
