"""Shared preparation of a bar panel for the feature and target builders.

Both builders count time in the ticker's own rows (its sessions with a bar), so a gap in a
ticker's history makes one "step" span several sessions; nothing is forward-filled.
"""

from __future__ import annotations

import polars as pl

from model_code.market_data.schema import OHLCV_SCHEMA

KEYS: tuple[str, str] = ("ticker", "date")
BY = "ticker"
_OPTIONAL = ("open", "high", "low", "adj_close", "volume")


def prepare_bars(bars: pl.DataFrame) -> pl.DataFrame:
    """Validate, sort by (ticker, date) and add the adjusted price, its log and the log return.

    Added columns (all Float64, per ticker): ``_px`` = coalesce(adj_close, close) in USD, NULL
    where not strictly positive; ``_lp`` = ln(_px); ``_r`` = ln(_px[t] / _px[t-1]) (previous
    row of the same ticker). Missing optional OHLCV columns are added as NULL, never invented.

    Raises:
        ValueError: a required column is missing or a (ticker, date) key appears twice.
    """
    missing = [c for c in ("ticker", "date", "close") if c not in bars.columns]
    if missing:
        raise ValueError(f"bars lack required column(s) {missing}; found {bars.columns}")
    frame = bars.select(
        pl.col("ticker").cast(pl.String),
        _as_date(bars.schema["date"]),
        *[
            (pl.col(c) if c in bars.columns else pl.lit(None)).cast(OHLCV_SCHEMA[c]).alias(c)
            for c in ("close", *_OPTIONAL)
        ],
    ).sort(KEYS)
    dup = frame.select(pl.struct(KEYS).is_duplicated().any()).item()
    if dup:
        raise ValueError("bars contain a (ticker, date) key more than once")
    px = pl.coalesce("adj_close", "close")
    frame = frame.with_columns(pl.when(px > 0).then(px).alias("_px"))
    frame = frame.with_columns(pl.col("_px").log().alias("_lp"))
    return frame.with_columns(pl.col("_lp").diff().over(BY).alias("_r"))


def _as_date(dtype: pl.DataType) -> pl.Expr:
    col = pl.col("date")
    if isinstance(dtype, pl.Datetime):
        return col.dt.date().alias("date")
    return col.cast(pl.Date).alias("date")


def finite_or_null(names: list[str] | tuple[str, ...]) -> list[pl.Expr]:
    """Turn NaN/±inf (0/0, x/0) into NULL so that "unknown" has one representation."""
    return [pl.when(pl.col(c).is_finite()).then(pl.col(c)).alias(c) for c in names]
