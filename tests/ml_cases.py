"""Synthetic ML data where a model clearly has skill, for the governance tests.

:func:`with_skill` overwrites feature columns with the realized forward return they stand for
plus noise, so a model trained on them ranks tickers well out of sample (on a date whose label
is not realized the column is pure noise). It looks ahead by construction: use it only where a
test needs a model that beats the random walk, never in a point-in-time test.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

# feature column -> the forward return it is made to foretell
LEAKS = {"vr_10_126": "fwd_ret_1", "vr_5_126": "fwd_ret_5"}


def with_skill(
    features: pl.DataFrame,
    targets: pl.DataFrame,
    *,
    noise: float = 0.01,
    seed: int = 0,
    leaks: dict[str, str] | None = None,
    between: tuple[dt.date, dt.date] | None = None,
) -> pl.DataFrame:
    """``features`` with each of ``leaks``' columns replaced by its forward return + N(0, noise);
    with ``between``, only on dates in that window (pure noise outside it)."""
    rng = np.random.default_rng(seed)
    leaks = LEAKS if leaks is None else leaks
    cols = sorted(set(leaks.values()))
    joined = features.join(
        targets.select("ticker", "date", *(pl.col(c).alias(f"_{c}") for c in cols)),
        on=["ticker", "date"],
        how="left",
    )
    inside = pl.lit(True) if between is None else pl.col("date").is_between(*between)
    out = joined.with_columns(
        (
            pl.when(inside).then(pl.col(f"_{target}").fill_null(0.0)).otherwise(0.0)
            + pl.Series(rng.standard_normal(joined.height) * noise)
        ).alias(column)
        for column, target in leaks.items()
    )
    return out.select(features.columns)
