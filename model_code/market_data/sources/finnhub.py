"""Daily bars from Finnhub's stock candles endpoint.

``GET {base_url}/api/v1/stock/candle?symbol=AAPL&resolution=D&from=<unix>&to=<unix>`` with the
key in the ``X-Finnhub-Token`` header (never in the URL, so it cannot leak through URLs, logs or
the cache key). The documented answer holds parallel arrays, ``t`` in Unix seconds::

    {"c": [185.64, 184.25], "h": [188.44, 185.88], "l": [183.89, 183.43],
     "o": [187.15, 184.22], "s": "ok", "t": [1704153600, 1704240000], "v": [82488674, 58414460]}

``{"s": "no_data"}`` means Finnhub has no bars for that symbol in the window (it does not tell an
unknown symbol from an empty window). HTTP 401/403 (bad key, or a plan without candle access)
is a :class:`SourceConfigError` and is not retried.

``adj_close`` is left NULL: Finnhub candles are adjusted for splits but not for dividends, so
their close is neither the raw close nor the split-and-dividend-adjusted close the schema means
by ``adj_close``. ``close`` holds Finnhub's (split-adjusted) close as published.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import polars as pl

from model_code.market_data.schema import conform_ohlcv
from model_code.market_data.sources.base import SourceBatch, TickerNotFound
from model_code.market_data.sources.http import (
    MalformedResponse,
    fetch_per_ticker,
)
from model_code.market_data.sources.keyed_rest import KeyedRestSource

SOURCE_NAME = "finnhub"
KEY_ENV_VAR = "PM_FINNHUB_KEY"
TOKEN_HEADER = "X-Finnhub-Token"
ARRAYS = {"t": "timestamp", "o": "open", "h": "high", "l": "low", "c": "close", "v": "volume"}


class FinnhubSource(KeyedRestSource):
    """Daily candles per ticker for the requested window; ``adj_close`` is NULL (see module)."""

    name = SOURCE_NAME
    provider = "Finnhub"
    key_env_var = KEY_ENV_VAR

    def fetch(self, tickers: Sequence[str], start: dt.date, end: dt.date) -> SourceBatch:
        self.require_key()
        return fetch_per_ticker(
            SOURCE_NAME, tickers, start, end, lambda ticker: self._fetch_one(ticker, start, end)
        )

    def _fetch_one(self, ticker: str, start: dt.date, end: dt.date) -> pl.DataFrame:
        params = {
            "symbol": ticker,
            "resolution": "D",
            "from": _unix(start),
            "to": _unix(end + dt.timedelta(days=1)) - 1,
        }
        columns = self.client.get_json(
            f"{self.base_url}/api/v1/stock/candle",
            params=params,
            headers={TOKEN_HEADER: self._api_key or ""},
            parse=lambda body: _candles(ticker, start, end, body),
        )
        raw = pl.DataFrame(
            {"ticker": [ticker] * len(columns["timestamp"]), **columns},
            schema_overrides={"timestamp": pl.Int64()},
            strict=False,
        )
        raw = raw.with_columns(pl.from_epoch("timestamp", time_unit="s").dt.date().alias("date")).drop(
            "timestamp"
        )
        return conform_ohlcv(raw, source=SOURCE_NAME, origin=f"{SOURCE_NAME} {ticker}")


def _candles(ticker: str, start: dt.date, end: dt.date, body: Any) -> dict[str, list[Any]]:
    """The candle arrays renamed to schema columns, or the error the body stands for."""
    if not isinstance(body, dict):
        raise MalformedResponse(f"{SOURCE_NAME}: expected a JSON object for {ticker}")
    status = body.get("s")
    if status == "no_data":
        raise TickerNotFound(f"{SOURCE_NAME}: no data for {ticker} between {start} and {end}")
    if status != "ok":
        raise MalformedResponse(f"{SOURCE_NAME}: unexpected candle status {status!r} for {ticker}")
    arrays = {key: body.get(key) for key in ARRAYS}
    if not all(isinstance(a, list) for a in arrays.values()):
        absent = sorted(k for k, a in arrays.items() if not isinstance(a, list))
        raise MalformedResponse(f"{SOURCE_NAME}: candle arrays {absent} missing for {ticker}")
    if len({len(a) for a in arrays.values()}) != 1:
        raise MalformedResponse(f"{SOURCE_NAME}: candle arrays of unequal length for {ticker}")
    if not all(isinstance(t, int) for t in arrays["t"]):
        raise MalformedResponse(f"{SOURCE_NAME}: non-integer timestamps for {ticker}")
    return {ARRAYS[key]: values for key, values in arrays.items()}


def _unix(day: dt.date) -> int:
    """Midnight UTC of ``day`` in Unix seconds (Finnhub stamps daily candles at 00:00 UTC)."""
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp())
