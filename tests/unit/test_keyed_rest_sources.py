"""Alpha Vantage and Finnhub specifics (throttle notes, premium endpoints, key handling), against a
local server; the behaviour all web sources share is in ``test_web_sources.py``."""

from __future__ import annotations

import logging

import pytest

from model_code.market_data.sources.alphavantage import AlphaVantageSource
from model_code.market_data.sources.base import SourceConfigError
from model_code.market_data.sources.fallback import FallbackChain
from model_code.market_data.sources.finnhub import FinnhubSource
from model_code.market_data.sources.http import HttpPolicy
from tests import http_fake
from tests.http_fake import POLICY, FakeHttpServer, FakeTime, Reply
from tests.web_cases import (
    AV_KEY,
    CASES,
    END,
    FH_KEY,
    START,
    cache_files,
    csv_source,
)

fake_server = http_fake.fake_server  # the scripted 127.0.0.1 server, as a fixture


AV = CASES[0]
AV_DAILY_LIMIT = {
    "Information": f"We have detected your API key as {AV_KEY} and our standard "
    "API rate limit is 25 requests per day. Please subscribe to any of the premium "
    "plans at https://www.alphavantage.co/premium/ to instantly remove all daily "
    "rate limits."
}


def test_alphavantage_request_and_throttle_note_is_retried_not_cached(fake_server, tmp_path):
    note = {
        "Note": "Thank you for using Alpha Vantage! Our standard API call frequency is 5 calls "
        "per minute and 500 calls per day."
    }
    AV.script(fake_server, "AAPL", Reply.json(note), AV.ok("AAPL"))
    clock = FakeTime()
    batch = AV.build(fake_server.url, tmp_path, POLICY, clock).fetch(["AAPL"], START, END)

    assert batch.bars.height == 3 and clock.sleeps == [1.0]
    first = fake_server.received_at("/query")[0].query
    assert first == {
        "function": "TIME_SERIES_DAILY_ADJUSTED",
        "symbol": "AAPL",
        "outputsize": "full",
        "datatype": "json",
        "apikey": AV_KEY,
    }
    [cached] = cache_files(tmp_path)
    assert "Time Series (Daily)" in cached.read_text() and "Note" not in cached.read_text()


def test_alphavantage_rate_limit_information_exhausts_as_throttled(fake_server, tmp_path):
    AV.script(fake_server, "AAPL", Reply.json(AV_DAILY_LIMIT))
    batch = AV.build(fake_server.url, tmp_path, POLICY, FakeTime()).fetch(["AAPL"], START, END)
    assert batch.missing["AAPL"].startswith("throttled (We have detected your API key as ***")
    assert "after 4 attempts" in batch.missing["AAPL"]
    assert cache_files(tmp_path) == []


def test_alphavantage_premium_endpoint_is_a_config_error_and_chain_goes_on(fake_server, tmp_path):
    premium = {
        "Information": "Thank you for using Alpha Vantage! This is a premium endpoint. You "
        "may subscribe to any of the premium plans at https://www.alphavantage.co/premium/"
    }
    AV.script(fake_server, "AAPL", Reply.json(premium))
    source = AV.build(fake_server.url, None, POLICY, FakeTime())
    with pytest.raises(SourceConfigError, match="premium endpoint"):
        source.fetch(["AAPL"], START, END)
    assert len(fake_server.received) == 1  # not retried

    result = FallbackChain([source, csv_source(tmp_path)]).fetch(["AAPL"], START, END)
    assert result.served_by == {"AAPL": "csv"}


@pytest.mark.parametrize(
    ("make", "env_var"),
    [
        (
            lambda url: AlphaVantageSource(None, base_url=url, policy=POLICY, cache_dir=None),
            "PM_ALPHAVANTAGE_KEY",
        ),
        (lambda url: FinnhubSource("", base_url=url, policy=POLICY, cache_dir=None), "PM_FINNHUB_KEY"),
    ],
)
def test_missing_key_is_a_config_error_naming_the_env_var(make, env_var, fake_server):
    with pytest.raises(SourceConfigError, match=env_var):
        make(fake_server.url).fetch(["AAPL"], START, END)
    assert fake_server.received == []


# ---- Finnhub specifics ---------------------------------------------------------------------

FH = CASES[1]


def test_finnhub_asks_for_the_window_in_unix_seconds(fake_server):
    FH.script(fake_server, "AAPL", FH.ok("AAPL"))
    FH.build(fake_server.url, None, POLICY, FakeTime()).fetch(["AAPL"], START, END)
    [request] = fake_server.received
    assert request.query == {
        "symbol": "AAPL",
        "resolution": "D",
        "from": "1704240000",
        "to": str(1704240000 + 3 * 86400 - 1),
    }


@pytest.mark.parametrize("status", [401, 403])
def test_finnhub_rejected_key_is_a_config_error_without_retries(status, fake_server):
    FH.script(fake_server, "AAPL", Reply.json({"error": "Invalid API key"}, status))
    with pytest.raises(SourceConfigError, match=f"HTTP {status}"):
        FH.build(fake_server.url, None, POLICY, FakeTime()).fetch(["AAPL"], START, END)
    assert len(fake_server.received) == 1


# ---- keys never leak -----------------------------------------------------------------------


@pytest.mark.parametrize("case", [AV, FH], ids=["alphavantage", "finnhub"])
def test_api_key_never_leaks(case, fake_server, tmp_path, caplog):
    key = AV_KEY if case is AV else FH_KEY
    caplog.set_level(logging.DEBUG)  # includes urllib3's request lines
    case.script(fake_server, "AAPL", case.ok("AAPL"))
    case.script(fake_server, "MSFT", Reply.text(f"upstream said {key}", 500))
    case.script(fake_server, "IBM", Reply(200, {}, f"<html>{key}</html>"))
    case.script(fake_server, "NOPE", case.unknown)
    case.script(fake_server, "TSLA", Reply.json(AV_DAILY_LIMIT if case is AV else {"s": key}))
    source = case.build(fake_server.url, tmp_path, POLICY, FakeTime())
    batch = source.fetch(["AAPL", "MSFT", "IBM", "NOPE", "TSLA"], START, END)
    assert sorted(batch.missing) == ["IBM", "MSFT", "NOPE", "TSLA"]

    messages = list(batch.missing.values())
    case.script(fake_server, "AAPL", Reply.text(f"bad key {key}", 401))
    dead = case.build(fake_server.url, None, POLICY, FakeTime())
    with pytest.raises(SourceConfigError) as rejected:
        dead.fetch(["AAPL"], START, END)
    with FakeHttpServer() as closed:  # stopped and closed at once: connections are refused
        pass
    unreachable = case.build(closed.url, None, HttpPolicy(0, max_attempts=2, timeout_s=1), FakeTime()).fetch(
        ["AAPL"], START, END
    )
    messages += [str(rejected.value), *unreachable.missing.values()]
    assert "connection failed" in unreachable.missing["AAPL"]

    assert any("***" in m for m in messages)  # the key was there to leak, and was masked
    for text in [*messages, *(r.getMessage() for r in caplog.records)]:
        assert key not in text
    if case is AV:  # the key rides in the query string, so urllib3's request lines are masked
        assert any("apikey=***" in r.getMessage() for r in caplog.records if r.name.startswith("urllib3"))
    for file in cache_files(tmp_path):
        assert key not in file.read_text()
    assert key not in str(batch.bars.rows())
    if case is FH:
        for request in fake_server.received:
            assert key not in request.target
            assert request.headers["x-finnhub-token"] == key


# ---- yfinance hook -------------------------------------------------------------------------
