"""Out-of-sample prediction metrics computed per date, then aggregated across dates.

All inputs are out-of-sample rows keyed by a date column (one cross-section per date). Per-date
statistics avoid pooling different market regimes into one correlation; the time series of
per-date values then gives a mean and a t-statistic. Rows with a NULL/NaN/inf prediction or
label are ignored. No Dagster imports here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import polars as pl


def _finite(frame: pl.DataFrame, cols: Sequence[str], date_col: str) -> pl.DataFrame:
    """``date_col`` and ``cols`` cast to Float64, keeping rows where all of ``cols`` are finite."""
    out = frame.select(pl.col(date_col), *(pl.col(c).cast(pl.Float64) for c in cols))
    return out.filter(pl.all_horizontal(pl.col(c).is_finite() for c in cols))


def _daily_corr(
    frame: pl.DataFrame, pred_col: str, label_col: str, date_col: str, rank: bool
) -> pl.DataFrame:
    data = _finite(frame, (pred_col, label_col), date_col)
    if rank:
        data = data.with_columns(pl.col(c).rank("average").over(date_col) for c in (pred_col, label_col))
    return (
        data.group_by(date_col)
        .agg(pl.corr(pred_col, label_col).alias("ic"), pl.len().alias("n"))
        .filter(pl.col("ic").is_finite())
        .sort(date_col)
    )


def daily_ic(frame: pl.DataFrame, pred_col: str, label_col: str, *, date_col: str = "date") -> pl.DataFrame:
    """Pearson correlation of prediction and label per date: columns ``date, ic, n``.

    Dates where it is undefined (< 2 rows, constant prediction or label) are dropped.
    """
    return _daily_corr(frame, pred_col, label_col, date_col, rank=False)


def daily_rank_ic(
    frame: pl.DataFrame, pred_col: str, label_col: str, *, date_col: str = "date"
) -> pl.DataFrame:
    """Spearman correlation (Pearson of average ranks) per date: columns ``date, ic, n``."""
    return _daily_corr(frame, pred_col, label_col, date_col, rank=True)


def _mean_t(values: np.ndarray) -> dict[str, float | int]:
    v = values[np.isfinite(values)]
    n = int(v.size)
    mean = float(v.mean()) if n else math.nan
    std = float(v.std(ddof=1)) if n > 1 else math.nan
    ratio = mean / std if std > 0 else math.nan
    return {"mean": mean, "std": std, "ratio": ratio, "t_stat": ratio * math.sqrt(n), "n": n}


def ic_summary(series: pl.Series | np.ndarray | Sequence[float]) -> dict[str, float | int]:
    """Aggregate per-date ICs: ``mean``, ``std`` (ddof=1), ``icir = mean/std`` (per date,
    not annualized), ``t_stat = icir * sqrt(n)`` and ``n`` (finite values). NaN where undefined.
    """
    s = _mean_t(np.asarray(series, dtype=float))
    return {"mean": s["mean"], "std": s["std"], "icir": s["ratio"], "t_stat": s["t_stat"], "n": s["n"]}


def hit_rate(
    pred: pl.Series | np.ndarray | Sequence[float], label: pl.Series | np.ndarray | Sequence[float]
) -> tuple[float, float]:
    """Share of rows where sign(pred) == sign(label), and its standard error sqrt(p(1-p)/n).

    Rows with a zero label (no direction) or a non-finite value are ignored; a zero
    prediction counts as a miss. Returns ``(nan, nan)`` when no row is left.
    """
    p = np.asarray(pred, dtype=float)
    y = np.asarray(label, dtype=float)
    if p.shape != y.shape:
        raise ValueError(f"pred and label differ in shape: {p.shape} vs {y.shape}")
    ok = np.isfinite(p) & np.isfinite(y) & (y != 0)
    n = int(ok.sum())
    if n == 0:
        return math.nan, math.nan
    rate = float(np.mean(np.sign(p[ok]) == np.sign(y[ok])))
    return rate, math.sqrt(rate * (1.0 - rate) / n)


def quantile_spread_by_date(
    frame: pl.DataFrame, pred_col: str, label_col: str, q: int = 5, *, date_col: str = "date"
) -> pl.DataFrame:
    """Per date, mean label of the top prediction quantile minus that of the bottom one.

    Buckets: ``floor((rank - 1) * q / n)`` with average ranks, so tied predictions share a
    bucket. Dates with fewer than ``q`` rows or an empty top/bottom bucket are dropped.
    Columns ``date, spread, n``; the spread is in the label's units (e.g. h-day log return).
    """
    if q < 2:
        raise ValueError(f"q must be >= 2, got {q}")
    data = _finite(frame, (pred_col, label_col), date_col)
    n = pl.len().over(date_col)
    bucket = ((pl.col(pred_col).rank("average").over(date_col) - 1.0) * q / n).floor()
    y = pl.col(label_col)
    return (
        data.with_columns(bucket.alias("_b"), n.alias("n"))
        .filter(pl.col("n") >= q)
        .group_by(date_col)
        .agg(
            (y.filter(pl.col("_b") == q - 1).mean() - y.filter(pl.col("_b") == 0).mean()).alias("spread"),
            pl.col("n").first(),
        )
        .filter(pl.col("spread").is_not_null())
        .sort(date_col)
    )


def quantile_spread(
    frame: pl.DataFrame, pred_col: str, label_col: str, q: int = 5, *, date_col: str = "date"
) -> dict[str, float | int]:
    """Top-minus-bottom quantile label spread: ``mean`` and ``std`` over dates, ``t_stat =
    mean / std * sqrt(n_dates)`` and ``n_dates`` (see :func:`quantile_spread_by_date`).
    """
    s = _mean_t(
        quantile_spread_by_date(frame, pred_col, label_col, q, date_col=date_col)["spread"].to_numpy()
    )
    return {"mean": s["mean"], "std": s["std"], "t_stat": s["t_stat"], "n_dates": s["n"]}
