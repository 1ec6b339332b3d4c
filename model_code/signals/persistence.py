"""Over-trading: how often a ticker's signal changes action from one session to the next."""

from __future__ import annotations

import polars as pl

DEFAULT_WINDOW = 20  # sessions
DEFAULT_MAX_FLIP_RATE = 0.8


def flip_rates(signals: pl.DataFrame, *, window: int = DEFAULT_WINDOW) -> pl.DataFrame:
    """Per ticker over its last ``window`` signals: ``changes`` of action between consecutive
    signals, ``sessions`` seen, and ``flip_rate = changes / (sessions - 1)`` (NULL under 2)."""
    last = signals.sort("ticker", "as_of").group_by("ticker", maintain_order=True).tail(window)
    return (
        last.with_columns(
            changed=(pl.col("action") != pl.col("action").shift(1).over("ticker")).cast(pl.Int64)
        )
        .group_by("ticker", maintain_order=True)
        .agg(pl.col("changed").sum().alias("changes"), pl.len().alias("sessions"))
        .with_columns(
            flip_rate=pl.when(pl.col("sessions") >= 2).then(pl.col("changes") / (pl.col("sessions") - 1))
        )
        .sort("ticker")
    )


def over_trading(
    signals: pl.DataFrame, *, window: int = DEFAULT_WINDOW, max_flip_rate: float = DEFAULT_MAX_FLIP_RATE
) -> pl.DataFrame:
    """Tickers with a full ``window`` of signals whose action flipped on more than ``max_flip_rate``
    of them (the seed's ``validate_signal_persistence``)."""
    rates = flip_rates(signals, window=window)
    return rates.filter((pl.col("sessions") >= window) & (pl.col("flip_rate") > max_flip_rate))
