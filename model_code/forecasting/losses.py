"""The one rule for realized forecast losses, point in time: what the ensemble weights use.

Both the nightly ``forecasts/predictions`` asset and the walk-forward evaluation weight the
ensemble by :func:`realized_losses`, so the published walk-forward ensemble is the one
production runs. A forecast counts at ``as_of`` only if it was made before ``as_of`` (and at
or after ``since`` when a lookback is given), its realized target closed on the forecast's own
``target_date`` and no later than ``as_of``, and every model of that horizon forecast the same
(origin, ticker, horizon) key, so the models are compared on the same forecasts.

Units: ``yhat`` and ``actual`` are cumulative log returns over the horizon; ``mse`` is in log
return squared.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import polars as pl

from model_code.horizons import HORIZONS

ENSEMBLE = "ensemble"
KEY = ("origin", "ticker", "horizon")
LOSS_SCHEMA: dict[str, pl.DataType] = {
    "model": pl.String(),
    "horizon": pl.Int32(),
    "mse": pl.Float64(),
    "n": pl.Int64(),
}
_TARGET_SCHEMA: dict[str, pl.DataType] = {
    "ticker": pl.String(),
    "origin": pl.Date(),
    "horizon": pl.Int32(),
    "realized_date": pl.Date(),
    "actual": pl.Float64(),
}


def targets_long(targets: pl.DataFrame, horizons: Sequence[int] = HORIZONS) -> pl.DataFrame:
    """``features.targets``-shaped rows (``ticker, date, target_date_{h}, fwd_ret_{h}``) as long
    ``(ticker, origin, horizon, realized_date, actual)``, one row per horizon."""
    if targets.is_empty():
        return pl.DataFrame(schema=_TARGET_SCHEMA)
    parts = [
        targets.select(
            pl.col("ticker"),
            pl.col("date").alias("origin"),
            pl.lit(h, dtype=pl.Int32).alias("horizon"),
            pl.col(f"target_date_{h}").alias("realized_date"),
            pl.col(f"fwd_ret_{h}").alias("actual"),
        )
        for h in horizons
    ]
    return pl.concat(parts).cast(_TARGET_SCHEMA)  # type: ignore[arg-type]


def attach_realized(forecasts: pl.DataFrame, targets: pl.DataFrame) -> pl.DataFrame:
    """``forecasts`` (keyed by ``origin``, or ``as_of`` renamed to it) with ``actual`` added.

    ``targets`` is :func:`targets_long` output. ``actual`` is left NULL unless the ticker's
    realized target closed on the forecast's ``target_date`` (a gap in the ticker's bars makes
    its h-th next bar a later session: that is not the quantity forecast).
    """
    if "as_of" in forecasts.columns:
        forecasts = forecasts.rename({"as_of": "origin"})
    out = forecasts.drop("actual", strict=False).join(
        targets.select("ticker", "origin", "horizon", "realized_date", "actual"),
        on=["ticker", "origin", "horizon"],
        how="left",
    )
    same_day = pl.col("realized_date") == pl.col("target_date")
    return out.with_columns(pl.when(same_day).then(pl.col("actual")).alias("actual")).drop("realized_date")


def realized_losses(history: pl.DataFrame, as_of: dt.date, since: dt.date | None = None) -> pl.DataFrame:
    """Per (model, horizon): MSE and count of ``history`` forecasts realized by ``as_of``.

    ``history`` has ``origin, ticker, model, horizon, target_date, yhat, actual`` (``actual``
    from :func:`attach_realized`). Only rows with ``since <= origin < as_of``, ``target_date <=
    as_of`` and finite ``yhat`` and ``actual`` count, ensemble rows excluded, restricted to keys
    where every model of that horizon has a row. Columns :data:`LOSS_SCHEMA`, sorted.
    """
    if history.is_empty():
        return pl.DataFrame(schema=LOSS_SCHEMA)
    window = pl.col("origin") < as_of
    if since is not None:
        window &= pl.col("origin") >= since
    done = history.filter(
        window
        & (pl.col("target_date") <= as_of)
        & (pl.col("model") != ENSEMBLE)
        & pl.col("actual").is_finite()
        & pl.col("yhat").is_finite()
    )
    n_models = pl.col("model").n_unique().over("horizon")
    done = done.filter(pl.len().over(KEY) == n_models)
    return (
        done.group_by("model", "horizon")
        .agg(
            ((pl.col("yhat") - pl.col("actual")) ** 2).mean().alias("mse"), pl.len().cast(pl.Int64).alias("n")
        )
        .select(pl.col("model"), pl.col("horizon").cast(pl.Int32), "mse", "n")
        .sort("model", "horizon")
    )
