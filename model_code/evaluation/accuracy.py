"""Point and interval accuracy of evaluated forecasts, aggregated per group (vectorized polars).

Input rows are forecasts joined with their realization: ``yhat`` and ``actual`` are cumulative
log returns over the horizon (units: log return), ``lower_80/upper_80/lower_95/upper_95`` the
forecast's central prediction intervals. Rows with a non-finite ``yhat`` or ``actual`` (e.g. a
target not realized yet) are left out of every metric.

Metrics (error ``e = yhat - actual``):

* ``n``               rows used.
* ``rmse``, ``mae``   sqrt(mean e²), mean |e|  (log-return units).
* ``bias``            mean e.
* ``tracking_error``  sample std of e (ddof=1).
* ``smape``           mean of ``2|e| / (|actual| + |yhat|)`` over rows where that denominator is
  nonzero; in [0, 2]. For returns it is a poor yardstick (the denominator is near zero often and
  a zero forecast, e.g. the random walk, scores exactly 2 on every row); kept for completeness.
* ``hit_rate``        share of rows with ``sign(yhat) == sign(actual)`` among rows where both are
  nonzero (``hit_n``); a model that always forecasts 0 has no direction and gets NULL.
* ``hit_se``          sqrt(p(1-p)/hit_n): binomial standard error that treats rows as
  independent (same-date rows are correlated across tickers, so it is optimistic).
* ``coverage_80/95``  share of rows with ``lower <= actual <= upper`` among rows with that
  interval (NULL when no row has one, e.g. the interval columns are absent).
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

METRIC_COLUMNS: tuple[str, ...] = (
    "n",
    "rmse",
    "mae",
    "bias",
    "tracking_error",
    "smape",
    "hit_n",
    "hit_rate",
    "hit_se",
    "coverage_80",
    "coverage_95",
)


def accuracy_table(evaluated: pl.DataFrame, by: Sequence[str] = ("model", "horizon")) -> pl.DataFrame:
    """One row per ``by`` group with the metrics of :data:`METRIC_COLUMNS`, sorted by ``by``."""
    by = list(by)
    y, f = pl.col("actual").cast(pl.Float64), pl.col("yhat").cast(pl.Float64)
    bounds = [f"{side}_{lv}" for lv in (80, 95) for side in ("lower", "upper")]
    missing = [pl.lit(None, dtype=pl.Float64).alias(c) for c in bounds if c not in evaluated.columns]
    data = (
        evaluated.with_columns(missing)
        .filter(y.is_finite() & f.is_finite())
        .with_columns(
            (f - y).alias("_e"),
            (y.abs() + f.abs()).alias("_den"),
            ((f != 0) & (y != 0)).alias("_dir"),
            (f.sign() == y.sign()).alias("_hit"),
            *(
                pl.when(pl.col(f"lower_{lv}").is_not_null() & pl.col(f"upper_{lv}").is_not_null())
                .then((y >= pl.col(f"lower_{lv}")) & (y <= pl.col(f"upper_{lv}")))
                .alias(f"_in{lv}")
                for lv in (80, 95)
            ),
        )
    )
    e = pl.col("_e")
    table = data.group_by(by).agg(
        pl.len().cast(pl.Int64).alias("n"),
        (e**2).mean().sqrt().alias("rmse"),
        e.abs().mean().alias("mae"),
        e.mean().alias("bias"),
        e.std(ddof=1).alias("tracking_error"),
        (2 * e.abs() / pl.col("_den")).filter(pl.col("_den") > 0).mean().alias("smape"),
        pl.col("_dir").sum().cast(pl.Int64).alias("hit_n"),
        pl.col("_hit").filter(pl.col("_dir")).mean().alias("hit_rate"),
        pl.col("_in80").mean().alias("coverage_80"),
        pl.col("_in95").mean().alias("coverage_95"),
    )
    p = pl.col("hit_rate")
    table = table.with_columns(
        pl.when(pl.col("hit_n") > 0).then((p * (1 - p) / pl.col("hit_n")).sqrt()).alias("hit_se")
    )
    return table.select(*by, *METRIC_COLUMNS).sort(by)
