"""HTTP plumbing shared by the web sources: rate limit, retries with backoff, response cache.

Every web source talks through one :class:`HttpClient`, which

- spaces its requests at least ``60 / requests_per_minute`` seconds apart (thread-safe);
- retries HTTP 408/429/5xx, timeouts, connection errors and throttle notices that an API hides
  in a 200 body (a ``parse`` callable raises :class:`Throttled`) with capped exponential
  backoff, honouring a numeric ``Retry-After``; after the last attempt it raises
  :class:`SourceUnavailable` naming the source, the problem and the (redacted) URL;
- keeps successful, parsed responses on disk as JSON for ``cache_ttl_s`` under
  ``cache_dir/<source>/<sha256>.json``, keyed without the secret parameters;
- replaces every secret with ``***`` in what it raises or logs, including urllib3's debug lines.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar
from urllib.parse import quote, quote_plus, urlencode

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


class SecretRedactor(logging.Filter):
    """Replaces secrets (and their URL-encoded forms) with ``***``; also a logging filter."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._secrets: set[str] = set()
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        for secret in secrets:
            if secret:
                self._secrets |= {secret, quote(secret, safe=""), quote_plus(secret)}

    def __contains__(self, value: object) -> bool:
        return isinstance(value, str) and value in self._secrets

    def redact(self, text: str) -> str:
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, "***")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = self.redact(message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True


# urllib3 logs every request line (query string included) at DEBUG; Alpha Vantage only accepts
# its key in the query, so every client registers its secrets here too.
_TRANSPORT_LOG_REDACTOR = SecretRedactor()
logging.getLogger("urllib3.connectionpool").addFilter(_TRANSPORT_LOG_REDACTOR)


class RateLimiter:
    """Minimum spacing of ``60 / requests_per_minute`` seconds between calls to :meth:`wait`.

    Each caller reserves the next free slot under a lock and sleeps outside it, so concurrent
    threads get successive slots instead of racing for the same one.
    """

    def __init__(
        self,
        requests_per_minute: float,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval_s = 60.0 / requests_per_minute if requests_per_minute > 0 else 0.0
        self._sleep, self._clock = sleep, clock
        self._next_slot: float | None = None
        self._lock = threading.Lock()

    def wait(self) -> None:
        with self._lock:
            now = self._clock()
            slot = now if self._next_slot is None else max(now, self._next_slot)
            self._next_slot = slot + self.interval_s
        if slot > now:
            self._sleep(slot - now)


class ResponseCache:
    """Successful payloads as JSON files ``<root>/<key>.json``, reused for ``ttl_s`` seconds.

    Best effort: a file that cannot be read or written is treated as a miss, never an error.
    """

    def __init__(self, root: Path, ttl_s: float, *, now: Callable[[], float] = time.time) -> None:
        self.root, self.ttl_s, self._now = Path(root), ttl_s, now

    @staticmethod
    def key(*parts: Any) -> str:
        """A stable file name for a request described by JSON-serialisable ``parts``."""
        blob = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()

    def path(self, key: str) -> Path:
        return self.root / f"{key}.json"

    def load(self, key: str) -> Any | None:
        """The cached payload, or ``None`` when absent, expired or unreadable."""
        try:
            entry = json.loads(self.path(key).read_text())
            fresh = self._now() - float(entry["stored_at"]) <= self.ttl_s
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring unreadable cache file %s: %s", self.path(key), exc)
            return None
        return entry["payload"] if fresh else None

    def store(self, key: str, payload: Any, *, request: str) -> None:
        """Write atomically; ``request`` (already redacted) is kept for people reading the file."""
        entry = {"stored_at": self._now(), "request": request, "payload": payload}
        target = self.path(key)
        tmp = target.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(entry))
            os.replace(tmp, target)
        except OSError as exc:
            log.warning("could not write cache file %s: %s", target, exc)
            tmp.unlink(missing_ok=True)


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
        _TRANSPORT_LOG_REDACTOR.add(secrets)
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
            delay = retry_after if retry_after is not None else min(
                self.policy.backoff_s * 2 ** (attempt - 1), cap
            )
            log.warning(
                "%s: %s; retry %d of %d in %.1f s (%s)",
                self.source, problem, attempt, attempts - 1, delay, shown,
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
            raise SourceError(
                f"{self.source}: HTTP {status} ({shown}): {self._snippet(response.text)}"
            )
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
    for ticker in tickers:
        try:
            bars = fetch_one(ticker).filter(window_filter([ticker], start, end))
        except SourceConfigError as exc:
            raise SourceConfigError(_without_source(source, exc)) from None
        except SourceError as exc:
            missing[ticker] = _without_source(source, exc)
            continue
        if bars.height:
            frames.append(bars)
        else:
            missing[ticker] = f"no bars between {start} and {end}"
    return SourceBatch(bars=concat_ohlcv(frames), missing=missing)


def _without_source(source: str, exc: Exception) -> str:
    return str(exc).removeprefix(f"{source}: ")
