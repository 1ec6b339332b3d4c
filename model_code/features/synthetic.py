"""Seeded synthetic bar panels for tests and benchmarks of the feature engine.

Daily log returns are Gaussian AR(1): r[t] = mu + phi * (r[t-1] - mu) + sigma * e[t], so
``phi = 0`` is a random walk, ``phi > 0`` persistent (trending) and ``phi < 0`` mean-reverting.
Bars sit on consecutive NYSE sessions, optionally with random gaps.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
from scipy.signal import lfilter

from model_code.market_data.calendar import trading_calendar
from model_code.market_data.schema import OHLCV_SCHEMA


def ar1_returns(
    rng: np.random.Generator,
    shape: tuple[int, int],
    *,
    mu: float = 0.0003,
    sigma: float = 0.015,
    phi: float = 0.0,
) -> np.ndarray:
    """AR(1) daily log returns, shape (tickers, bars), started at the stationary distribution."""
    eps = rng.standard_normal(shape) * sigma
    if phi == 0.0:
        return mu + eps
    y_prev = rng.standard_normal((shape[0], 1)) * sigma / np.sqrt(1.0 - phi * phi)
    return mu + lfilter([1.0], [1.0, -phi], eps, axis=1, zi=phi * y_prev)[0]


def synthetic_bars(
    n_tickers: int = 5,
    n_bars: int = 300,
    *,
    seed: int = 0,
    phi: float = 0.0,
    close_only: int = 0,
    gap_fraction: float = 0.0,
    start: dt.date = dt.date(2015, 1, 2),
) -> pl.DataFrame:
    """A canonical OHLCV panel: ``n_tickers`` x ``n_bars`` bars (fewer with gaps).

    The last ``close_only`` tickers keep open/high/low/volume NULL (close-only series).
    ``gap_fraction`` of the rows (never the first) are dropped at random to create gaps.
    Prices in USD start at 20..100; volume is log-normal shares.
    """
    rng = np.random.default_rng(seed)
    sessions = trading_calendar().sessions_in_range(start, start + dt.timedelta(days=2 * n_bars + 30))
    sessions = sessions[:n_bars]
    if len(sessions) < n_bars:
        raise ValueError(f"calendar has only {len(sessions)} sessions from {start}")
    shape = (n_tickers, n_bars)
    r = ar1_returns(rng, shape, phi=phi)
    close = rng.uniform(20, 100, (n_tickers, 1)) * np.exp(np.cumsum(r, axis=1))
    open_ = close * np.exp(-r * rng.uniform(0.2, 0.8, shape))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0, 0.006, shape)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0, 0.006, shape)))
    volume = np.round(rng.lognormal(13.0, 0.6, shape))
    # A constant dividend-style adjustment factor: adj_close differs from close.
    adj = close * rng.uniform(0.8, 1.0, (n_tickers, 1))
    partial = np.zeros(shape, dtype=bool)
    partial[n_tickers - close_only :] = True
    frame = pl.DataFrame(
        {
            "ticker": np.repeat([f"T{i:03d}" for i in range(n_tickers)], n_bars),
            "date": np.tile(sessions, n_tickers),
            "open": np.where(partial, np.nan, open_).ravel(),
            "high": np.where(partial, np.nan, high).ravel(),
            "low": np.where(partial, np.nan, low).ravel(),
            "close": close.ravel(),
            "adj_close": adj.ravel(),
            "volume": np.where(partial, np.nan, volume).ravel(),
            "source": "synthetic",
        }
    ).with_columns(pl.col("date").cast(pl.Date), pl.col(pl.Float64).fill_nan(None))
    if gap_fraction > 0:
        keep = rng.random(n_tickers * n_bars) >= gap_fraction
        keep[::n_bars] = True
        frame = frame.filter(pl.Series(keep))
    return frame.select(pl.col(c).cast(t) for c, t in OHLCV_SCHEMA.items())
