"""The returns window the methods estimate on, and which tickers it can size.

Input: ``returns_history``, a wide polars frame: a ``date`` column and one column per ticker of
DAILY LOG returns (``model_code.forecasting.returns.daily_log_returns`` pivoted by
:func:`returns_matrix`). Only dates ``<= as_of`` are read (the decision is at the close of as_of).
Non-finite values and |r| > :data:`MAX_ABS_LOG_RETURN` are treated as missing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import polars as pl

MAX_ABS_LOG_RETURN = 5.0  # a daily log return beyond +-5 (x148 or -99.3 %) is a data error
MIN_DAILY_VOL = 1e-10  # below this a series is constant: there is no risk estimate to size on


def returns_matrix(long_returns: pl.DataFrame, value: str = "r") -> pl.DataFrame:
    """``(ticker, date, r)`` rows -> ``date`` plus one column per ticker, sorted by date."""
    return long_returns.pivot(on="ticker", index="date", values=value).sort("date")


@dataclass(frozen=True)
class Window:
    """``X``: (sessions, tickers) daily log returns with no missing value, for ``tickers``.
    ``excluded``: ticker -> why it cannot be sized."""

    X: np.ndarray
    tickers: list[str]
    excluded: dict[str, str] = field(default_factory=dict)


def estimation_window(
    returns_history: pl.DataFrame, as_of: dt.date, tickers: list[str], *, lookback: int, min_history: int
) -> Window:
    """The last ``lookback`` sessions up to ``as_of`` for the ``tickers`` with at least ``min_history``
    finite returns there and non-constant returns. Dates where a kept ticker is missing are dropped
    when ``min_history`` dates remain; otherwise a missing day counts as a flat day (0)."""
    hist = returns_history.filter(pl.col("date") <= as_of).sort("date").tail(lookback)
    excluded: dict[str, str] = {}
    kept: list[str] = []
    cols: list[np.ndarray] = []
    for t in tickers:
        if t not in hist.columns or hist.height == 0:
            excluded[t] = "no return history"
            continue
        x = hist[t].cast(pl.Float64).to_numpy().astype(float, copy=True)
        x[~np.isfinite(x) | (np.abs(np.nan_to_num(x, nan=0.0)) > MAX_ABS_LOG_RETURN)] = np.nan
        n = int(np.isfinite(x).sum())
        if n < min_history:
            excluded[t] = f"too little return history ({n} of {min_history} sessions)"
            continue
        if float(np.nanstd(x)) < MIN_DAILY_VOL:
            excluded[t] = "constant returns: no risk estimate"
            continue
        kept.append(t)
        cols.append(x)
    if not kept:
        return Window(np.empty((0, 0)), [], excluded)
    X = np.column_stack(cols)
    complete = np.isfinite(X).all(axis=1)
    X = X[complete] if complete.sum() >= min_history else np.nan_to_num(X, nan=0.0)
    return Window(X, kept, excluded)


def daily_vols(X: np.ndarray) -> np.ndarray:
    """Sample standard deviation (ddof 1) of each column: daily log-return volatility."""
    if X.shape[0] < 2:
        return np.full(X.shape[1], np.nan)
    return X.std(axis=0, ddof=1)


def market_vol_annual(X: np.ndarray, window: int = 21) -> float:
    """Annualized vol of the equal-weight mean of the columns over the last ``window`` sessions."""
    if X.size == 0 or X.shape[0] < 2:
        return float("nan")
    mkt = X.mean(axis=1)[-window:]
    return float(mkt.std(ddof=1) * np.sqrt(252)) if mkt.size >= 2 else float("nan")
