"""The market as the ledger reads it: a date x ticker tape of raw bars, with what the execution
model needs known at each close (ADV in shares, volatility) computed by the execution model's
own functions over the same rows the backtester uses.

Rows are the dates with any bar (as in the backtester's panel); a ticker with no volume
anywhere on the tape (close-only series) is given
:data:`~model_code.backtest.runs.NO_VOLUME_SHARES`, as the backtest of the allocations does, so
it trades without the participation cap.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from model_code.backtest.runs import NO_VOLUME_SHARES
from model_code.execution import ExecutionConfig, adv_shares, trailing_adv, trailing_volatility
from model_code.paper.corporate import CorporateAction, derive_action


@dataclass(frozen=True)
class Session:
    """What the ledger needs of the market on one date (per ticker, tickers with a bar only).

    Attributes:
        open, close: raw prices of the day's bar (open NaN where the bar has none).
        liquidity: ADV in shares known at this close (orders placed today are capped by it).
        sigma: daily volatility known at this close (NaN: unknown).
        actions: splits and distributions going ex today (from the previous bar's factor).
        last_bar: every ticker's last stored bar date (a held ticker without a bar today whose
            last bar is earlier than today is delisted, as the backtester treats it).
    """

    date: dt.date
    open: Mapping[str, float]
    close: Mapping[str, float]
    liquidity: Mapping[str, float]
    sigma: Mapping[str, float]
    actions: Mapping[str, CorporateAction] = field(default_factory=dict)
    last_bar: Mapping[str, dt.date] = field(default_factory=dict)

    def delisted(self, ticker: str) -> bool:
        last = self.last_bar.get(ticker)
        return ticker not in self.close and last is not None and last < self.date


@dataclass(frozen=True)
class Tape:
    """Raw bars as ``(n_dates, n_tickers)`` arrays plus the execution model's preparations."""

    dates: list[dt.date]
    tickers: list[str]
    open: np.ndarray
    close: np.ndarray
    adj_close: np.ndarray
    liquidity: np.ndarray
    sigma: np.ndarray
    last_bar: Mapping[str, dt.date]

    def session(self, date: dt.date) -> Session:
        """The :class:`Session` of ``date`` (which must be a row of the tape)."""
        i = self.dates.index(date)
        has = np.flatnonzero(np.isfinite(self.close[i]))
        names = [self.tickers[j] for j in has]
        actions: dict[str, CorporateAction] = {}
        if i > 0:
            seen = np.isfinite(self.close[:i])
            last = i - 1 - np.argmax(seen[::-1], axis=0)  # previous bar's row per ticker
            for j in has:
                if not seen[:, j].any():
                    continue
                p = int(last[j])
                act = derive_action(
                    float(self.close[p, j]),
                    float(self.adj_close[p, j]),
                    float(self.close[i, j]),
                    float(self.adj_close[i, j]),
                )
                if act is not None:
                    actions[self.tickers[j]] = act
        return Session(
            date=date,
            open={t: float(self.open[i, j]) for t, j in zip(names, has, strict=True)},
            close={t: float(self.close[i, j]) for t, j in zip(names, has, strict=True)},
            liquidity={t: float(self.liquidity[i, j]) for t, j in zip(names, has, strict=True)},
            sigma={t: float(self.sigma[i, j]) for t, j in zip(names, has, strict=True)},
            actions=actions,
            last_bar=self.last_bar,
        )


def wide(bars: pl.DataFrame, column: str, dates: list[dt.date], tickers: list[str]) -> np.ndarray:
    """One column of long bars as a ``dates x tickers`` float array (NaN where missing)."""
    frame = bars.pivot(on="ticker", index="date", values=column).sort("date")
    frame = frame.select(
        "date", *[pl.col(t) if t in frame.columns else pl.lit(None).alias(t) for t in tickers]
    )
    out = frame.drop("date").to_numpy().astype(np.float64)
    if frame.height != len(dates):  # pragma: no cover - dates come from these bars
        raise ValueError("tape dates do not match the bars")
    return out


def build_tape(
    bars: pl.DataFrame,
    config: ExecutionConfig,
    last_bar: Mapping[str, dt.date] | None = None,
) -> Tape:
    """The tape of ``bars`` (long: ticker, date, open, close, adj_close, volume).

    ``last_bar``: each ticker's last stored bar (defaults to the last in ``bars``); pass the
    warehouse's coverage so a tape cut at the run's last session does not call every ticker
    delisted after it.
    """
    dates = sorted(bars["date"].unique().to_list())
    tickers = sorted(bars["ticker"].unique().to_list())
    open_ = wide(bars, "open", dates, tickers)
    close = wide(bars, "close", dates, tickers)
    adj = wide(bars, "adj_close", dates, tickers)
    volume = wide(bars, "volume", dates, tickers)
    no_volume = ~np.isfinite(volume).any(axis=0)
    volume = np.where(no_volume[None, :] & np.isfinite(close), NO_VOLUME_SHARES, volume)
    liquidity = adv_shares(trailing_adv(close, volume, config.window), close)
    sigma = trailing_volatility(close, config.window) if config.impact_k > 0 else np.full(close.shape, np.nan)
    if last_bar is None:
        last = bars.group_by("ticker").agg(pl.col("date").max())
        last_bar = dict(zip(last["ticker"].to_list(), last["date"].to_list(), strict=True))
    return Tape(dates, tickers, open_, close, adj, liquidity, sigma, dict(last_bar))
