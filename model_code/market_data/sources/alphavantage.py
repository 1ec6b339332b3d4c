"""Daily bars from Alpha Vantage's ``TIME_SERIES_DAILY_ADJUSTED`` endpoint.

One request per ticker (``outputsize=full``, ``datatype=json``) returns the whole history::

    {"Meta Data": {"1. Information": "Daily Time Series with Splits and Dividend Events", ...},
     "Time Series (Daily)": {"2024-01-05": {"1. open": "181.99", "2. high": "182.76",
         "3. low": "180.17", "4. close": "181.18", "5. adjusted close": "180.24",
         "6. volume": "62379661", "7. dividend amount": "0.0000",
         "8. split coefficient": "1.0"}, ...}}

``4. close`` is the raw close and ``5. adjusted close`` the split- and dividend-adjusted one.
Alpha Vantage answers most problems with HTTP 200 and a one-key body:

- ``{"Error Message": ...}``: unknown symbol → the ticker is missing, the others go on;
- ``{"Note": ...}`` or ``{"Information": ...}`` about call frequency / rate limits → throttled,
  retried with backoff and never cached;
- ``{"Information": ...}`` about premium endpoints (or anything else) → :class:`SourceConfigError`.

The API accepts the key only as the ``apikey`` query parameter, so it is redacted from every
message and log line and left out of the cache key. Messages such as "We have detected your API
key as ..." are redacted too.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import polars as pl

from model_code.market_data.schema import conform_ohlcv
from model_code.market_data.sources.base import SourceBatch, SourceConfigError, TickerNotFound
from model_code.market_data.sources.http import (
    MalformedResponse,
    Throttled,
    fetch_per_ticker,
)
from model_code.market_data.sources.keyed_rest import KeyedRestSource

SOURCE_NAME = "alphavantage"
KEY_ENV_VAR = "PM_ALPHAVANTAGE_KEY"
SERIES_KEY = "Time Series (Daily)"
FIELDS = {
    "open": "1. open",
    "high": "2. high",
    "low": "3. low",
    "close": "4. close",
    "adj_close": "5. adjusted close",
    "volume": "6. volume",
}
_THROTTLE_WORDS = ("call frequency", "rate limit", "requests per", "calls per")


class AlphaVantageSource(KeyedRestSource):
    """Full daily history per ticker; raw close → ``close``, adjusted close → ``adj_close``."""

    name = SOURCE_NAME
    provider = "Alpha Vantage"
    key_env_var = KEY_ENV_VAR

    def fetch(self, tickers: Sequence[str], start: dt.date, end: dt.date) -> SourceBatch:
        self.require_key()
        return fetch_per_ticker(SOURCE_NAME, tickers, start, end, self._fetch_one)

    def _fetch_one(self, ticker: str) -> pl.DataFrame:
        params = {
            "function": "TIME_SERIES_DAILY_ADJUSTED",
            "symbol": ticker,
            "outputsize": "full",
            "datatype": "json",
            "apikey": self._api_key or "",
        }
        series = self.client.get_json(
            f"{self.base_url}/query", params=params, parse=lambda body: self._series(ticker, body)
        )
        return _bars(ticker, series)

    def _series(self, ticker: str, body: Any) -> dict[str, Any]:
        """The ``Time Series (Daily)`` mapping, or the error the body stands for."""
        if not isinstance(body, dict):
            raise MalformedResponse(f"{SOURCE_NAME}: expected a JSON object for {ticker}")
        if "Error Message" in body:
            raise TickerNotFound(
                f"{SOURCE_NAME}: unknown ticker {ticker} ({self.client.redact(str(body['Error Message']))})"
            )
        notice = str(body.get("Note") or body.get("Information") or "")
        if notice and SERIES_KEY not in body:
            text = self.client.redact(notice)
            if "Note" in body or any(w in notice.lower() for w in _THROTTLE_WORDS):
                raise Throttled(text)
            raise SourceConfigError(f"{SOURCE_NAME}: {text}")
        series = body.get(SERIES_KEY)
        if not isinstance(series, dict) or not all(isinstance(v, dict) for v in series.values()):
            raise MalformedResponse(
                f"{SOURCE_NAME}: no {SERIES_KEY!r} object for {ticker}; got keys {sorted(body)[:5]}"
            )
        return series


def _bars(ticker: str, series: dict[str, dict[str, Any]]) -> pl.DataFrame:
    """Canonical bars from the series; values stay text so the conformer flags bad ones."""
    dates = sorted(series)
    columns: dict[str, list[Any]] = {"ticker": [ticker] * len(dates), "date": dates}
    for column, field in FIELDS.items():
        columns[column] = [_text(series[d].get(field)) for d in dates]
    raw = pl.DataFrame(columns, schema={c: pl.String() for c in columns})
    return conform_ohlcv(raw, source=SOURCE_NAME, origin=f"{SOURCE_NAME} {ticker}")


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
