"""Daily log returns of the canonical bars, the input every forecaster is fitted on."""

from __future__ import annotations

import datetime as dt

import polars as pl


def daily_log_returns(bars: pl.DataFrame, as_of: dt.date) -> pl.DataFrame:
    """``(ticker, date, r)``: ``log(px_t / px_{t-1})`` between a ticker's consecutive bars dated
    ``<= as_of``, ``px = coalesce(adj_close, close)``, finite values only, sorted by ticker, date."""
    px = pl.coalesce("adj_close", "close")
    return (
        bars.filter(pl.col("date") <= as_of)
        .sort("ticker", "date")
        .with_columns(r=(px / px.shift(1)).log().over("ticker"))
        .filter(pl.col("r").is_not_null() & pl.col("r").is_finite())
        .select("ticker", "date", "r")
    )
