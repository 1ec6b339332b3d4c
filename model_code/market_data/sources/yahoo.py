"""Daily bars from Yahoo Finance through the ``yfinance`` package.

Each ticker is one ``yf.Ticker(t, session=...).history(start, end + 1 day, interval="1d",
auto_adjust=False, actions=False, repair=False)`` call, made one after another in the calling
thread (``download()``'s ``threads``/``progress`` options do not apply: no pool, no progress
bar). ``auto_adjust=False`` keeps Yahoo's raw ``Close`` next to its split- and
dividend-adjusted ``Adj Close``; they map to ``close`` and ``adj_close``. Bars of a successful
call are cached on disk as JSON per ticker and window for ``cache_ttl_s``.

How yfinance is steered (the hook)
----------------------------------
yfinance 1.7 routes every request (``fc.yahoo.com`` cookie, ``query1/v1/test/getcrumb`` crumb,
``query2/v8/finance/chart/{ticker}`` bars) through the session given to ``yf.Ticker``. We give
it a :class:`YahooSession`, a ``curl_cffi`` session (yfinance's own transport, impersonating
Chrome) whose :meth:`~YahooSession.request`

- rewrites ``https://*.yahoo.com/<path>?<query>`` to ``<base_url>/<path>?<query>`` when
  ``base_url`` is set, so yfinance's real cookie, crumb and chart parsing code runs against a
  local server in tests (the cookie/crumb dance needs no special handling: the local server
  answers ``/`` and ``/v1/test/getcrumb`` like any other path);
- spaces every Yahoo request with the source's rate limiter, and retries the chart requests
  (the data) on 429/5xx/timeouts with the shared backoff policy, raising
  :class:`SourceUnavailable` after the last attempt; a chart body that is not JSON raises
  :class:`MalformedResponse`. Cookie/crumb requests get one attempt, as yfinance expects.

yfinance logs and swallows most errors and returns an empty frame, so during one ticker's call
the session remembers the first failure (per thread: retries exhausted, malformed chart, chart
404) and refuses further requests, which also spares the four fallback endpoints yfinance
would try next; the source then reports that failure instead of yfinance's generic "possibly
delisted". Other yfinance errors become the reason as they are.

Nothing is patched. yfinance process state worth knowing: ``YfData`` is a singleton that keeps
the last session handed to it (we hand ours on every call, so two sources must not fetch
concurrently, and later session-less yfinance calls in the process go through our session);
``YfData.cache_get`` memoises responses in memory by Yahoo URL, and we clear that memo before
each call so a response from another session (another server, an earlier error) is never
reused.

yfinance also keeps small SQLite caches (ticker → time zone, the Yahoo cookie, ISIN → ticker)
in ``~/.cache/py-yfinance`` by default. Before each call we point them, through
``yf.set_tz_cache_location``, at ``<cache_dir>/yfinance/py-yfinance`` (or
``$PM_HOME/tmp/py-yfinance`` when the source has no cache folder), so the platform writes
nothing outside its own folders. yfinance's cache objects hold on to the database they opened
first, so when the folder changes we also drop them (private class attributes of yfinance's
cache managers) and they reopen in the new folder.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pandas as pd
import polars as pl
import yfinance as yf
from curl_cffi import requests as curl_requests
from yfinance import cache as yf_cache
from yfinance.data import YfData

from model_code.market_data.schema import conform_ohlcv
from model_code.market_data.sources.base import SourceBatch, SourceError, TickerNotFound
from model_code.market_data.sources.http import (
    HttpClient,
    HttpPolicy,
    MalformedResponse,
    describe_request,
    fetch_per_ticker,
)
from model_code.settings import pm_home

SOURCE_NAME = "yfinance"
CHART_PATH = "/v8/finance/chart/"
COLUMNS = {
    "Date": "date",
    "Open": "open",
    "High": "high",
    "Low": "low",
    "Close": "close",
    "Adj Close": "adj_close",
    "Volume": "volume",
}
YF_CACHE_FOLDER = "py-yfinance"  # the folder name yfinance itself uses

# yfinance 1.7's cache objects: (private manager class, attribute holding the object). A name
# missing in another yfinance version is skipped; the yfinance cache-folder test then fails.
# Below them, where the caches were last pointed.
_YF_CACHE_SINGLETONS = (
    ("_TzCacheManager", "_tz_cache"),
    ("_CookieCacheManager", "_Cookie_cache"),
    ("_ISINCacheManager", "_isin_cache"),
)
_yf_cache_lock = threading.Lock()
_yf_cache_location: str | None = None


def use_yfinance_cache_folder(folder: Path) -> None:
    """Make yfinance keep its time-zone, cookie and ISIN caches in ``folder`` from now on.

    ``yf.set_tz_cache_location`` alone only works before yfinance first opens a cache: its
    cache objects keep the database they opened. When the folder changes, they are dropped so
    the next lookup opens the database in the new folder (see the module docstring).
    """
    global _yf_cache_location
    location = str(folder)
    with _yf_cache_lock:
        if location == _yf_cache_location:
            return
        yf.set_tz_cache_location(location)  # closes the open databases
        for manager, attribute in _YF_CACHE_SINGLETONS:
            holder = getattr(yf_cache, manager, None)
            if holder is not None and hasattr(holder, attribute):
                setattr(holder, attribute, None)
        _yf_cache_location = location


class YahooSession(curl_requests.Session):
    """The session handed to yfinance: Yahoo hosts → ``base_url``; rate limit and retries."""

    def __init__(self, client: HttpClient, base_url: str | None) -> None:
        super().__init__(impersonate="chrome")
        self._client = client
        self._base_url = base_url.rstrip("/") if base_url else None
        self._state = threading.local()

    @property
    def failure(self) -> SourceError | None:
        """The first error of the current ticker in this thread, if any."""
        return getattr(self._state, "failure", None)

    def end_ticker(self) -> SourceError | None:
        """The current ticker's failure, forgotten so later requests go through again."""
        failure, self._state.failure = self.failure, None
        return failure

    def route(self, url: str) -> str:
        """``url`` with a Yahoo host replaced by ``base_url`` (path and query kept)."""
        parts = urlsplit(url)
        host = parts.hostname or ""
        if self._base_url is None or not (host == "yahoo.com" or host.endswith(".yahoo.com")):
            return url
        query = f"?{parts.query}" if parts.query else ""
        return f"{self._base_url}{parts.path or '/'}{query}"

    def request(self, method: Any, url: str, **kwargs: Any) -> Any:  # type: ignore[override]
        if self.failure is not None:
            raise self.failure
        target = self.route(url)
        call = functools.partial(super().request, method, target, **kwargs)
        if CHART_PATH not in urlsplit(target).path:
            self._client.limiter.wait()
            return call()
        shown = describe_request(target, kwargs.get("params"))
        try:
            return self._client.send(shown, call, functools.partial(self._inspect_chart, shown))
        except SourceError as exc:
            self._state.failure = exc
            raise

    def _inspect_chart(self, shown: str, response: Any) -> Any:
        """Pass a chart response on to yfinance, noting a 404 and refusing a non-JSON 200.

        After a 404 ("symbol may be delisted") yfinance would go on to ask four more endpoints
        for the same symbol; remembering it as the ticker's failure stops those requests.
        """
        if response.status_code == 404:
            said = _chart_error(response.content) or "HTTP 404"
            self._state.failure = TickerNotFound(f"{SOURCE_NAME}: Yahoo has no chart ({said})")
        elif response.status_code == 200:
            try:
                json.loads(response.content)
            except ValueError as exc:
                raise MalformedResponse(
                    f"{SOURCE_NAME}: response is not valid JSON ({exc}) from {shown}"
                ) from None
        return response


def _chart_error(content: bytes) -> str | None:
    """Yahoo's ``chart.error.description``, if the body has one."""
    try:
        return str(json.loads(content)["chart"]["error"]["description"])
    except (ValueError, KeyError, TypeError):
        return None


class YFinanceSource:
    """Yahoo daily bars per ticker via yfinance; raw ``close`` and ``adj_close`` both kept."""

    name = SOURCE_NAME

    def __init__(
        self,
        *,
        base_url: str | None,
        policy: HttpPolicy,
        cache_dir: Path | None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.base_url = base_url
        self.policy = policy
        self.client = HttpClient(SOURCE_NAME, policy, cache_dir, sleep=sleep, clock=clock)
        self.session = YahooSession(self.client, base_url)
        self.yfinance_cache_dir = (
            Path(cache_dir) / SOURCE_NAME / YF_CACHE_FOLDER
            if cache_dir is not None
            else pm_home() / "tmp" / YF_CACHE_FOLDER
        )

    def __repr__(self) -> str:
        return f"YFinanceSource(base_url={self.base_url!r})"

    def list_tickers(self) -> None:
        return None

    def fetch(self, tickers: Sequence[str], start: dt.date, end: dt.date) -> SourceBatch:
        return fetch_per_ticker(
            SOURCE_NAME, tickers, start, end, lambda ticker: self._bars(ticker, start, end)
        )

    def _bars(self, ticker: str, start: dt.date, end: dt.date) -> pl.DataFrame:
        cache = self.client.cache
        key = cache.key("history", ticker, start.isoformat(), end.isoformat()) if cache else ""
        cached = cache.load(key) if cache else None
        if cached is not None:
            raw = pl.DataFrame(cached)
        else:
            raw = self._history(ticker, start, end)
            if cache:
                payload = raw.with_columns(pl.col("date").cast(pl.String)).to_dict(as_series=False)
                cache.store(key, payload, request=f"{SOURCE_NAME} history {ticker} {start}..{end}")
        return conform_ohlcv(raw, source=SOURCE_NAME, origin=f"{SOURCE_NAME} {ticker}")

    def _history(self, ticker: str, start: dt.date, end: dt.date) -> pl.DataFrame:
        """One yfinance call; raises the session's error, or :class:`TickerNotFound` if empty."""
        self.session.end_ticker()  # nothing left over from an interrupted call
        YfData.cache_get.cache_clear()  # see the module docstring
        use_yfinance_cache_folder(self.yfinance_cache_dir)
        handle: yf.Ticker | None = None
        error: Exception | None = None
        try:
            handle = yf.Ticker(ticker, session=self.session)
            history = handle.history(
                start=start.isoformat(),
                end=(end + dt.timedelta(days=1)).isoformat(),  # yfinance's end is exclusive
                interval="1d",
                auto_adjust=False,
                back_adjust=False,
                actions=False,
                repair=False,
                keepna=False,
                rounding=False,
                timeout=self.policy.timeout_s,
            )
        except Exception as exc:  # yfinance raises many kinds; the reason is what matters
            history, error = pd.DataFrame(), exc
        finally:
            failure = self.session.end_ticker()
        if failure is not None:
            raise failure
        if error is not None:
            raise SourceError(f"{SOURCE_NAME}: {ticker}: {type(error).__name__}: {error}")
        if history.empty:
            # yfinance logs why it has nothing and keeps the text where its own download()
            # reads it from; there is no public accessor.
            price_history = getattr(handle, "_price_history", None)
            said = getattr(price_history, "_last_error", None) or "no rows returned"
            raise TickerNotFound(f"{SOURCE_NAME}: no bars for {ticker} between {start} and {end} ({said})")
        return _frame(ticker, history)


def _frame(ticker: str, history: pd.DataFrame) -> pl.DataFrame:
    """yfinance's frame (exchange-local timestamps) as plain columns with the local date."""
    table = history.reset_index()
    table = table[[c for c in COLUMNS if c in table.columns]].rename(columns=COLUMNS)
    raw = pl.from_pandas(table)
    date = pl.col("date")
    if isinstance(raw.schema["date"], pl.Datetime):
        date = date.dt.replace_time_zone(None).dt.date()
    return raw.with_columns(date.alias("date"), pl.lit(ticker).alias("ticker"))
