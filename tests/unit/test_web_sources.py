"""Web sources (Alpha Vantage, Finnhub, yfinance) end to end, against a local server.

Nothing here touches the network: every source points at a scripted 127.0.0.1 server
(``tests/http_fake.py``) serving bodies in each API's documented format. Retry and rate-limit
waits go to a fake clock, so the file runs in seconds. The HTTP client's parts on their own
(rate limiter, backoff, cache, redaction, URL rewriting) are in ``test_http_client.py``.
"""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from model_code.market_data.schema import OHLCV_COLUMNS
from model_code.market_data.sources.alphavantage import AlphaVantageSource
from model_code.market_data.sources.fallback import FallbackChain
from model_code.market_data.sources.finnhub import FinnhubSource
from model_code.market_data.sources.registry import SourceSettings, build_source
from model_code.market_data.sources.yahoo import YFinanceSource
from tests import http_fake
from tests.http_fake import POLICY, FakeTime, Reply
from tests.web_cases import (
    AV_KEY,
    CASES,
    END,
    FH_KEY,
    START,
    WebCase,
    cache_files,
    csv_source,
)

fake_server = http_fake.fake_server  # the scripted 127.0.0.1 server, as a fixture


@pytest.fixture(params=CASES, ids=[c.name for c in CASES])
def case(request: pytest.FixtureRequest) -> WebCase:
    return request.param


# ---- behaviour shared by the three sources -------------------------------------------------


def test_success_lands_in_canonical_columns_within_window(case, fake_server, tmp_path):
    case.script(fake_server, "AAPL", case.ok("AAPL"))
    source = case.build(fake_server.url, None, POLICY, FakeTime())
    batch = source.fetch(["AAPL"], START, END)

    assert batch.missing == {}
    bars = batch.bars.sort("date")
    assert tuple(bars.columns[: len(OHLCV_COLUMNS)]) == OHLCV_COLUMNS
    assert bars["date"].to_list() == [dt.date(2024, 1, 3), dt.date(2024, 1, 4), dt.date(2024, 1, 5)]
    row = bars.filter(pl.col("date") == dt.date(2024, 1, 4)).row(0, named=True)
    assert (row["ticker"], row["source"], row["_unparseable"]) == ("AAPL", case.name, None)
    assert (row["open"], row["high"], row["low"], row["close"]) == (182.15, 183.09, 180.88, 181.91)
    assert row["adj_close"] == (181.02 if case.has_adj_close else None)
    assert row["volume"] == 71983600.0


def test_429_then_success_is_retried_after_retry_after(case, fake_server):
    case.script(
        fake_server,
        "AAPL",
        Reply.json({"error": "Too Many Requests"}, 429, **{"Retry-After": "7"}),
        case.ok("AAPL"),
    )
    clock = FakeTime()
    batch = case.build(fake_server.url, None, POLICY, clock).fetch(["AAPL"], START, END)

    assert batch.bars.height == 3 and batch.missing == {}
    assert clock.sleeps == [7.0]
    assert len(case.data_requests(fake_server, "AAPL")) == 2


def test_500s_exhaust_retries_then_chain_falls_back(case, fake_server, tmp_path):
    for ticker in ("AAPL", "MSFT"):
        case.script(fake_server, ticker, Reply.text("Internal Server Error", 500))
    clock = FakeTime()
    source = case.build(fake_server.url, None, POLICY, clock)

    batch = source.fetch(["AAPL"], START, END)
    assert batch.bars.height == 0
    assert batch.missing["AAPL"].startswith("HTTP 500 after 4 attempts (http://127.0.0.1:")
    assert len(case.data_requests(fake_server, "AAPL")) == 4
    assert clock.sleeps == [1.0, 2.0, 4.0]  # exponential backoff

    result = FallbackChain([source, csv_source(tmp_path)]).fetch(["AAPL", "MSFT"], START, END)
    assert result.served_by == {"AAPL": "csv"}
    assert result.bars["source"].unique().to_list() == ["csv"]
    first, second = result.failures["MSFT"]
    assert first.startswith(f"{case.name}: HTTP 500 after 4 attempts (")
    assert second.startswith("csv: no bars")


def test_malformed_json_is_a_clear_reason_and_other_tickers_go_on(case, fake_server):
    case.script(fake_server, "AAPL", Reply(200, {"Content-Type": "application/json"}, '{"c": [1,'))
    case.script(fake_server, "MSFT", case.ok("MSFT"))
    source = case.build(fake_server.url, None, POLICY, FakeTime())
    batch = source.fetch(["AAPL", "MSFT"], START, END)

    assert "response is not valid JSON" in batch.missing["AAPL"]
    assert batch.bars["ticker"].unique().to_list() == ["MSFT"]
    assert len(case.data_requests(fake_server, "AAPL")) == 1  # not retried


def test_unknown_ticker_is_missing_while_others_succeed(case, fake_server):
    case.script(fake_server, "AAPL", case.ok("AAPL"))
    case.script(fake_server, "NOPE", case.unknown)
    source = case.build(fake_server.url, None, POLICY, FakeTime())
    batch = source.fetch(["NOPE", "AAPL"], START, END)

    assert list(batch.missing) == ["NOPE"]
    assert case.unknown_reason in batch.missing["NOPE"]
    assert batch.bars["ticker"].unique().to_list() == ["AAPL"]
    assert batch.bars.height == 3


def test_second_fetch_is_served_from_disk_cache(case, fake_server, tmp_path):
    case.script(fake_server, "AAPL", case.ok("AAPL"))
    first = case.build(fake_server.url, tmp_path, POLICY, FakeTime()).fetch(["AAPL"], START, END)
    seen = len(fake_server.received)

    again = case.build(fake_server.url, tmp_path, POLICY, FakeTime()).fetch(["AAPL"], START, END)
    assert len(fake_server.received) == seen  # not a single request, not even a crumb
    assert again.bars.equals(first.bars)
    assert [p.parent.name for p in cache_files(tmp_path)] == [case.name]


def test_failed_responses_are_not_cached(case, fake_server, tmp_path):
    case.script(fake_server, "AAPL", Reply.text("Service Unavailable", 503))
    failed = case.build(fake_server.url, tmp_path, POLICY, FakeTime()).fetch(["AAPL"], START, END)
    assert "HTTP 503 after 4 attempts" in failed.missing["AAPL"]
    assert cache_files(tmp_path) == []

    case.script(fake_server, "AAPL", case.ok("AAPL"))
    ok = case.build(fake_server.url, tmp_path, POLICY, FakeTime()).fetch(["AAPL"], START, END)
    assert ok.bars.height == 3
    assert len(case.data_requests(fake_server, "AAPL")) == 5
    assert len(cache_files(tmp_path)) == 1


# ---- Alpha Vantage specifics ---------------------------------------------------------------


def test_registry_builds_each_web_source_without_a_request(fake_server, tmp_path):
    settings = SourceSettings(
        cache_dir=tmp_path,
        alphavantage_key=AV_KEY,
        finnhub_key=FH_KEY,
        alphavantage_url=fake_server.url,
        finnhub_url=fake_server.url,
        yahoo_url=fake_server.url,
    )
    for name, kind in [
        ("alphavantage", AlphaVantageSource),
        ("finnhub", FinnhubSource),
        ("yfinance", YFinanceSource),
    ]:
        source = build_source(name, settings)
        assert isinstance(source, kind) and source.name == name
        assert source.list_tickers() is None and AV_KEY not in repr(source)
    assert fake_server.received == []
