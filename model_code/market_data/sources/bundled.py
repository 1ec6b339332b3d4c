"""Real daily data that ships inside installed packages: the offline default source.

- skfolio ``load_sp500_dataset()``: adjusted closes of 20 US large caps, 1990-2022. Only the
  adjusted close is published, so ``close`` and ``adj_close`` both hold it and
  ``open``/``high``/``low``/``volume`` stay NULL.
- skfolio ``load_sp500_index()``: the S&P 500 index level (ticker ``SP500``), close only.
- arch ``arch.data.sp500`` / ``arch.data.nasdaq``: full daily OHLCV of the S&P 500 (``^GSPC``)
  and NASDAQ Composite (``^IXIC``), 1999-2018.

Nothing here touches the network: both packages read CSV files from their own install folder.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from functools import lru_cache

import pandas as pd
import polars as pl

from model_code.market_data.schema import conform_ohlcv
from model_code.market_data.sources.base import SourceBatch, missing_tickers, window_filter

SOURCE_NAME = "bundled"
# The last bar of the bundled data (skfolio's and arch's datasets); tests/unit/test_history.py
# checks it against the data, so the partitions can end there without loading them.
BUNDLED_LAST_DATE = dt.date(2022, 12, 28)


@lru_cache(maxsize=1)
def bundled_bars() -> pl.DataFrame:
    """All bundled bars in the canonical schema (loaded once per process)."""
    from arch.data import nasdaq, sp500
    from skfolio.datasets import load_sp500_dataset, load_sp500_index

    frames = [
        _close_only(load_sp500_dataset()),
        _close_only(load_sp500_index()),
        _ohlcv(sp500.load(), "^GSPC"),
        _ohlcv(nasdaq.load(), "^IXIC"),
    ]
    bars = pl.concat(
        [conform_ohlcv(pl.from_pandas(f), source=SOURCE_NAME, origin="bundled") for f in frames],
        how="vertical_relaxed",
    )
    return bars.sort("ticker", "date")


def _close_only(prices: pd.DataFrame) -> pd.DataFrame:
    long = (
        prices.rename_axis("date")
        .reset_index()
        .melt(id_vars="date", var_name="ticker", value_name="adj_close")
    )
    long["close"] = long["adj_close"]
    return long.dropna(subset=["adj_close"])


def _ohlcv(frame: pd.DataFrame, ticker: str) -> pd.DataFrame:
    out = frame.rename_axis("date").reset_index()
    out.columns = [str(c).lower().replace(" ", "_") for c in out.columns]
    out.insert(0, "ticker", ticker)
    return out


class BundledSource:
    """Offline source over the datasets bundled with skfolio and arch."""

    name = SOURCE_NAME

    def list_tickers(self) -> list[str]:
        return sorted(bundled_bars().get_column("ticker").unique().to_list())

    def fetch(self, tickers: Sequence[str], start: dt.date, end: dt.date) -> SourceBatch:
        bars = bundled_bars().filter(window_filter(tickers, start, end))
        known = set(self.list_tickers())
        missing = {t: "not in the bundled datasets" for t in tickers if t not in known}
        missing |= {
            t: f"no bundled bars between {start} and {end}"
            for t in missing_tickers(bars, tickers, "")
            if t not in missing
        }
        return SourceBatch(bars=bars, missing=missing)
