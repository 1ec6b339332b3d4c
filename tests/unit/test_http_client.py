"""The web sources' HTTP plumbing on its own: rate limit, retries and backoff, timeouts, the
response cache, secret redaction and the yfinance session's URL rewriting.

Requests go to a scripted 127.0.0.1 server (``tests/http_fake.py``), never the network; waits
go to a fake clock. Per-source behaviour is in ``test_web_sources.py``, ``test_keyed_rest_sources.py`` and
``test_yfinance_source.py``.
"""

from __future__ import annotations

import logging
import threading

import pytest

from model_code.market_data.sources.base import SourceUnavailable
from model_code.market_data.sources.http import HttpClient, HttpPolicy
from model_code.market_data.sources.rate_limit import RateLimiter
from model_code.market_data.sources.redaction import SecretRedactor, mask_in_transport_logs
from model_code.market_data.sources.response_cache import ResponseCache
from model_code.market_data.sources.yahoo import YFinanceSource
from tests import http_fake
from tests.http_fake import POLICY, FakeTime, Reply

fake_server = http_fake.fake_server  # the scripted 127.0.0.1 server, as a fixture


# ---- HTTP client: rate limit, backoff, timeouts, cache -------------------------------------


def test_rate_limiter_spaces_requests():
    clock = FakeTime()
    limiter = RateLimiter(30, sleep=clock.sleep, clock=clock.clock)  # one call per 2 s
    for _ in range(3):
        limiter.wait()
    assert clock.sleeps == [2.0, 2.0]
    clock.now += 10  # idle for a while: the next call goes at once
    limiter.wait()
    assert clock.sleeps == [2.0, 2.0]


def test_rate_limiter_gives_concurrent_threads_distinct_slots():
    sleeps: list[float] = []
    lock = threading.Lock()

    def record(seconds: float) -> None:
        with lock:
            sleeps.append(seconds)

    limiter = RateLimiter(60, sleep=record, clock=lambda: 0.0)  # the clock stands still
    start = threading.Barrier(8)

    def worker() -> None:
        start.wait()
        limiter.wait()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(sleeps) == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]


def test_client_spaces_real_requests(fake_server):
    fake_server.script("/ping", Reply.json({"ok": True}))
    clock = FakeTime()
    client = HttpClient(
        "demo", HttpPolicy(requests_per_minute=120), None, sleep=clock.sleep, clock=clock.clock
    )
    for _ in range(3):
        assert client.get_json(f"{fake_server.url}/ping", parse=lambda body: body["ok"])
    assert clock.sleeps == [0.5, 0.5] and len(fake_server.received) == 3


def test_backoff_doubles_up_to_the_cap(fake_server):
    fake_server.script("/flaky", *[Reply.text("busy", 503)] * 4, Reply.json([1]))
    clock = FakeTime()
    policy = HttpPolicy(requests_per_minute=0, max_attempts=5, backoff_s=1.0, backoff_max_s=3.0)
    client = HttpClient("demo", policy, None, sleep=clock.sleep, clock=clock.clock)
    assert client.get_json(f"{fake_server.url}/flaky", parse=list) == [1]
    assert clock.sleeps == [1.0, 2.0, 3.0, 3.0]


def test_retry_after_beyond_the_cap_gives_up_at_once(fake_server):
    fake_server.script("/busy", Reply.text("slow down", 429, **{"Retry-After": "120"}))
    clock = FakeTime()
    client = HttpClient("demo", POLICY, None, sleep=clock.sleep, clock=clock.clock)
    with pytest.raises(SourceUnavailable, match="demo: HTTP 429; asked to retry after 120 s"):
        client.get_json(f"{fake_server.url}/busy", parse=dict)
    assert clock.sleeps == [] and len(fake_server.received) == 1


def test_timeouts_are_retried_then_reported(fake_server):
    fake_server.script("/slow", Reply(200, {}, "{}", delay_s=0.3))
    clock = FakeTime()
    policy = HttpPolicy(requests_per_minute=0, max_attempts=2, timeout_s=0.05)
    client = HttpClient("demo", policy, None, sleep=clock.sleep, clock=clock.clock)
    with pytest.raises(SourceUnavailable, match=r"demo: timed out \(ReadTimeout\) after 2 "):
        client.get_json(f"{fake_server.url}/slow", parse=dict)
    assert clock.sleeps == [1.0]


def test_response_cache_expires_and_survives_corrupt_files(tmp_path):
    now = [0.0]
    cache = ResponseCache(tmp_path, ttl_s=60, now=lambda: now[0])
    key = cache.key("GET", "https://x/query", [("symbol", "AAPL")])
    cache.store(key, {"a": 1}, request="GET https://x/query?symbol=AAPL")
    now[0] = 60.0
    assert cache.load(key) == {"a": 1}
    now[0] = 61.0
    assert cache.load(key) is None
    cache.path(key).write_text("{truncated")
    assert cache.load(key) is None
    assert cache.load(cache.key("never stored")) is None


def test_cache_key_ignores_the_secret_but_not_the_symbol(fake_server, tmp_path):
    fake_server.script("/query", Reply.json({"n": 1}))
    url = f"{fake_server.url}/query"
    one, two = (HttpClient("demo", POLICY, tmp_path, [key]) for key in ("KEY-ONE", "KEY-TWO"))
    one.get_json(url, params={"symbol": "AAPL", "apikey": "KEY-ONE"}, parse=dict)
    two.get_json(url, params={"symbol": "AAPL", "apikey": "KEY-TWO"}, parse=dict)  # cached
    one.get_json(url, params={"symbol": "MSFT", "apikey": "KEY-ONE"}, parse=dict)
    assert [r.query["symbol"] for r in fake_server.received] == ["AAPL", "MSFT"]


# ---- secret redaction ----------------------------------------------------------------------


def test_redactor_masks_secrets_and_their_url_encodings(caplog):
    redactor = SecretRedactor(["k/e y+1", ""])  # an empty key is no secret
    assert redactor.redact("a k/e y+1 b k%2Fe%20y%2B1 c k%2Fe+y%2B1") == "a *** b *** c ***"
    assert "k/e y+1" in redactor and "k%2Fe+y%2B1" in redactor
    assert "" not in redactor and "other" not in redactor and None not in redactor
    logger = logging.getLogger("tests.redaction")
    logger.addFilter(redactor)
    try:
        with caplog.at_level(logging.INFO, logger="tests.redaction"):
            logger.info("GET /q?apikey=%s&symbol=%s", "k%2Fe%20y%2B1", "AAPL")
            logger.info("nothing to hide")
    finally:
        logger.removeFilter(redactor)
    assert [r.getMessage() for r in caplog.records] == ["GET /q?apikey=***&symbol=AAPL", "nothing to hide"]


def test_client_secrets_are_masked_in_urllib3_request_lines(caplog):
    HttpClient("demo", POLICY, None, ["TRANSPORT-SECRET-789"])
    mask_in_transport_logs(["OTHER-SECRET-012"])
    transport = logging.getLogger("urllib3.connectionpool")
    with caplog.at_level(logging.DEBUG, logger="urllib3.connectionpool"):
        for secret in ("TRANSPORT-SECRET-789", "OTHER-SECRET-012"):
            transport.debug(
                '%s://%s:%s "%s %s %s" %s %s',
                "http",
                "127.0.0.1",
                80,
                "GET",
                f"/query?apikey={secret}",
                "HTTP/1.1",
                200,
                2,
            )
    assert [r.getMessage() for r in caplog.records] == [
        'http://127.0.0.1:80 "GET /query?apikey=*** HTTP/1.1" 200 2'
    ] * 2


# ---- yfinance session: URL rewriting -------------------------------------------------------


def test_yahoo_session_rewrites_only_yahoo_hosts(fake_server):
    t = FakeTime()
    session = YFinanceSource(
        base_url=fake_server.url, policy=POLICY, cache_dir=None, sleep=t.sleep, clock=t.clock
    ).session
    assert session.route("https://query2.finance.yahoo.com/v8/finance/chart/AAPL?range=1d") == (
        f"{fake_server.url}/v8/finance/chart/AAPL?range=1d"
    )
    assert session.route("https://fc.yahoo.com") == f"{fake_server.url}/"
    assert session.route("https://example.org/x") == "https://example.org/x"
    real = YFinanceSource(base_url=None, policy=POLICY, cache_dir=None).session
    assert real.route("https://fc.yahoo.com") == "https://fc.yahoo.com"
