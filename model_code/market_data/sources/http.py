"""The HTTP client shared by the web sources: rate-limited, retrying, caching JSON GETs.

Every web source talks through one :class:`HttpClient`, so politeness, retries and key hygiene
are written once. The client

- spaces its requests at least ``60 / requests_per_minute`` seconds apart
  (:class:`~.rate_limit.RateLimiter`);
- retries HTTP 408/429/5xx, timeouts, connection errors and throttle notices that an API hides
  in a 200 body (a ``parse`` callable raises :class:`Throttled`) with capped exponential
  backoff, honouring a numeric ``Retry-After``; after the last attempt it raises
  :class:`SourceUnavailable` naming the source, the problem and the (redacted) URL;
- keeps successful, parsed responses on disk as JSON for ``cache_ttl_s`` under
  ``cache_dir/<source>/<sha256>.json``, keyed without the secret parameters
  (:class:`~.response_cache.ResponseCache`);
- replaces every secret with ``***`` in what it raises or logs, including urllib3's debug lines
  (:mod:`.redaction`).

:func:`fetch_per_ticker` is the batch loop of the sources that ask one ticker per request.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar
from urllib.parse import urlencode

import polars as pl
import requests

from model_code.market_data.schema import concat_ohlcv
from model_code.market_data.sources.base import (
    SourceBatch,
    SourceConfigError,
    SourceError,
    SourceUnavailable,
    window_filter,
)
from model_code.market_data.sources.rate_limit import RateLimiter
from model_code.market_data.sources.redaction import SecretRedactor, mask_in_transport_logs
from model_code.market_data.sources.response_cache import ResponseCache

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R", bound="HttpResponse")


@dataclass(frozen=True)
class HttpPolicy:
    """How politely and persistently one web source is called.

    Attributes:
        requests_per_minute: client-side rate limit (minimum spacing between requests).
        max_attempts: tries per request, the first included, on 429/5xx/timeouts.
        backoff_s: first retry delay; doubles each retry (a ``Retry-After`` header wins).
        backoff_max_s: cap on one retry delay.
        timeout_s: connect+read timeout of one request.
        cache_ttl_s: how long a successful response is reused from the on-disk cache.
    """

    requests_per_minute: float = 5.0
    max_attempts: int = 4
    backoff_s: float = 1.0
    backoff_max_s: float = 30.0
    timeout_s: float = 20.0
    cache_ttl_s: float = 12 * 3600.0


class HttpResponse(Protocol):
    """What the retry loop reads from a response (requests and curl_cffi both fit)."""

    status_code: int
    headers: Mapping[str, str]


class Throttled(Exception):
    """Raised by a ``parse`` callable: a 200 body says "slow down". Retried, never cached."""

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class MalformedResponse(SourceError):
    """The source answered, but not in its documented format (bad JSON, missing fields)."""


try:  # yfinance's transport raises its own exception types
    from curl_cffi.requests import exceptions as _curl

    TIMEOUT_ERRORS: tuple[type[Exception], ...] = (requests.Timeout, _curl.Timeout)
    TRANSIENT_ERRORS = (*TIMEOUT_ERRORS, requests.ConnectionError, _curl.ConnectionError)
except ImportError:  # pragma: no cover - curl_cffi ships with yfinance
    TIMEOUT_ERRORS = (requests.Timeout,)
    TRANSIENT_ERRORS = (requests.Timeout, requests.ConnectionError)


def is_retryable_status(status: int) -> bool:
    """Statuses worth another try: request timeout, too many requests, server errors."""
    return status in (408, 429) or status >= 500


class HttpClient:
    """Rate-limited, retrying, caching JSON GETs for one web source."""

    def __init__(
        self,
        source: str,
        policy: HttpPolicy,
        cache_dir: Path | None,
        secrets: Sequence[str] = (),
        *,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source, self.policy = source, policy
        self._secrets = SecretRedactor(secrets)
        mask_in_transport_logs(secrets)
        self.limiter = RateLimiter(policy.requests_per_minute, sleep=sleep, clock=clock)
        self.cache = (
            ResponseCache(Path(cache_dir) / source, policy.cache_ttl_s)
            if cache_dir is not None and policy.cache_ttl_s > 0
            else None
        )
        self._session = session or requests.Session()
        self._sleep = sleep

    def redact(self, text: str) -> str:
        """``text`` with every secret of this client replaced by ``***``."""
        return self._secrets.redact(text)

    def get_json(
        self,
        url: str,
        *,
        params: Mapping[str, str | int] | None = None,
        headers: Mapping[str, str] | None = None,
        parse: Callable[[Any], T],
    ) -> T:
        """GET ``url`` and return ``parse(decoded JSON)``, from the cache when fresh.

        ``parse`` may raise :class:`Throttled` (retried like a 429) or any
        :class:`SourceError` (passed on: e.g. ``TickerNotFound``, ``SourceConfigError``).

        Raises:
            SourceConfigError: HTTP 401/403 (not retried).
            MalformedResponse: the body is not JSON.
            SourceUnavailable: still failing after ``policy.max_attempts`` tries.
            SourceError: any other 4xx.
        """
        params = dict(params or {})
        shown = self.redact(requests.Request("GET", url, params=params).prepare().url or url)
        key = None
        if self.cache is not None:
            public = sorted((k, str(v)) for k, v in params.items() if str(v) not in self._secrets)
            key = self.cache.key("GET", url, public)
            cached = self.cache.load(key)
            if cached is not None:
                log.debug("%s: cache hit for %s", self.source, shown)
                return self._parse(parse, cached)

        def perform() -> requests.Response:
            return self._session.get(
                url, params=params, headers=dict(headers or {}), timeout=self.policy.timeout_s
            )

        def accept(response: requests.Response) -> tuple[Any, T]:
            payload = self._decode(response, shown)
            return payload, self._parse(parse, payload)

        payload, result = self.send(shown, perform, accept)
        if self.cache is not None and key is not None:
            self.cache.store(key, payload, request=shown)
        return result

    def send(self, shown: str, perform: Callable[[], R], accept: Callable[[R], T]) -> T:
        """Run ``perform`` under the rate limit and retry policy; return ``accept(response)``.

        Retryable statuses and transport errors are retried; any other response goes to
        ``accept``, which may raise :class:`Throttled` to ask for another try. ``shown`` is the
        request as it may appear in messages (already redacted).
        """
        attempts = max(1, self.policy.max_attempts)
        problem = "no attempt made"
        for attempt in range(1, attempts + 1):
            self.limiter.wait()
            retry_after: float | None = None
            try:
                response = perform()
            except TRANSIENT_ERRORS as exc:
                failed = "timed out" if isinstance(exc, TIMEOUT_ERRORS) else "connection failed"
                problem = f"{failed} ({type(exc).__name__})"
                log.debug("%s: %s: %s", self.source, problem, self.redact(str(exc)))
            else:
                if is_retryable_status(response.status_code):
                    problem = f"HTTP {response.status_code}"
                    retry_after = _retry_after_s(response.headers)
                else:
                    try:
                        return accept(response)
                    except Throttled as exc:
                        problem = f"throttled ({self.redact(str(exc))})"
                        retry_after = exc.retry_after_s
            if attempt == attempts:
                break
            cap = self.policy.backoff_max_s
            if retry_after is not None and retry_after > cap:
                raise SourceUnavailable(
                    f"{self.source}: {problem}; asked to retry after {retry_after:g} s, more than "
                    f"the {cap:g} s backoff cap ({shown})"
                )
            delay = (
                retry_after
                if retry_after is not None
                else min(self.policy.backoff_s * 2 ** (attempt - 1), cap)
            )
            log.warning(
                "%s: %s; retry %d of %d in %.1f s (%s)",
                self.source,
                problem,
                attempt,
                attempts - 1,
                delay,
                shown,
            )
            self._sleep(delay)
        raise SourceUnavailable(f"{self.source}: {problem} after {attempts} attempts ({shown})")

    def _decode(self, response: requests.Response, shown: str) -> Any:
        status = response.status_code
        if status in (401, 403):
            raise SourceConfigError(
                f"{self.source}: HTTP {status}: the API key was rejected or the plan does not "
                f"include this endpoint ({shown}): {self._snippet(response.text)}"
            )
        if status >= 400:
            raise SourceError(f"{self.source}: HTTP {status} ({shown}): {self._snippet(response.text)}")
        try:
            return json.loads(response.text)
        except ValueError as exc:
            raise MalformedResponse(
                f"{self.source}: response is not valid JSON ({exc}) from {shown}: "
                f"{self._snippet(response.text)}"
            ) from None

    def _parse(self, parse: Callable[[Any], T], payload: Any) -> T:
        """``parse(payload)``; an error quoting a body that echoes the key is redacted."""
        try:
            return parse(payload)
        except SourceError as exc:
            message = self.redact(str(exc))
            if message == str(exc):
                raise
            raise type(exc)(message) from None

    def _snippet(self, text: str, limit: int = 160) -> str:
        text = self.redact(" ".join(text.split()))
        return repr(text if len(text) <= limit else text[:limit] + "...")


def _retry_after_s(headers: Mapping[str, str]) -> float | None:
    """A numeric ``Retry-After`` in seconds; an HTTP date or garbage is ignored."""
    try:
        seconds = float(headers.get("Retry-After") or "")
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


def describe_request(url: str, params: Mapping[str, Any] | None) -> str:
    """``url`` with its query string, for messages (redact before showing)."""
    return f"{url}?{urlencode(params)}" if params else url


def fetch_per_ticker(
    source: str,
    tickers: Sequence[str],
    start: dt.date,
    end: dt.date,
    fetch_one: Callable[[str], pl.DataFrame],
) -> SourceBatch:
    """Bars of web sources that answer one ticker per request, filtered to ``[start, end]``.

    A ticker whose request fails (unknown, unavailable, malformed) lands in ``missing`` with its
    reason and the other tickers go on; a :class:`SourceConfigError` (bad or missing key) stops
    the batch because every further request would fail the same way. Reasons drop the leading
    ``"<source>: "`` because :class:`FallbackChain` prefixes the source name itself.
    """
    frames: list[pl.DataFrame] = []
    missing: dict[str, str] = {}
    unavailable: set[str] = set()
    for ticker in tickers:
        try:
            bars = fetch_one(ticker).filter(window_filter([ticker], start, end))
        except SourceConfigError as exc:
            raise SourceConfigError(_without_source(source, exc)) from None
        except SourceUnavailable as exc:
            missing[ticker] = _without_source(source, exc)
            unavailable.add(ticker)
            continue
        except SourceError as exc:
            missing[ticker] = _without_source(source, exc)
            continue
        if bars.height:
            frames.append(bars)
        else:
            missing[ticker] = f"no bars between {start} and {end}"
    return SourceBatch(bars=concat_ohlcv(frames), missing=missing, unavailable=unavailable)


def _without_source(source: str, exc: Exception) -> str:
    return str(exc).removeprefix(f"{source}: ")
