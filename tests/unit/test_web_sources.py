"""Web sources (Alpha Vantage, Finnhub, yfinance) end to end, against a local server.

Nothing here touches the network: every source points at a scripted 127.0.0.1 server
(``tests/http_fake.py``) serving bodies in each API's documented format. Retry and rate-limit
waits go to a fake clock, so the file runs in seconds. The HTTP client's parts on their own
(rate limiter, backoff, cache, redaction, URL rewriting) are in ``test_http_client.py``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from model_code.market_data.schema import OHLCV_COLUMNS
from model_code.market_data.sources.alphavantage import AlphaVantageSource
from model_code.market_data.sources.base import OhlcvSource, SourceConfigError
from model_code.market_data.sources.fallback import FallbackChain
from model_code.market_data.sources.files import CsvSource
from model_code.market_data.sources.finnhub import FinnhubSource
from model_code.market_data.sources.http import HttpPolicy
from model_code.market_data.sources.registry import SourceSettings, build_source
from model_code.market_data.sources.yahoo import YFinanceSource
from tests import http_fake
from tests.http_fake import POLICY, FakeHttpServer, FakeTime, Received, Reply

fake_server = http_fake.fake_server  # the scripted 127.0.0.1 server, as a fixture

AV_KEY, FH_KEY = "SECRET-AV-123", "SECRET-FH-456"
START, END = dt.date(2024, 1, 3), dt.date(2024, 1, 5)
# Documented response bodies for AAPL, 2024-01-02 .. 2024-01-08 (tests/fixtures/web).
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "web"


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text())


AV_UNKNOWN = {
    "Error Message": "Invalid API call. Please retry or visit the documentation "
    "(https://www.alphavantage.co/documentation/) for TIME_SERIES_DAILY_ADJUSTED."
}
YAHOO_NOT_FOUND = {
    "chart": {
        "result": None,
        "error": {"code": "Not Found", "description": "No data found, symbol may be delisted"},
    }
}


# ---- one harness per web source ------------------------------------------------------------


@dataclass
class WebCase:
    name: str
    build: Callable[[str, Path | None, HttpPolicy, FakeTime], OhlcvSource]
    route: Callable[[str], tuple[str, dict[str, str]]]
    ok: Callable[[str], Reply]
    unknown: Reply
    unknown_reason: str
    has_adj_close: bool = True
    prepare: Callable[[FakeHttpServer], None] = field(default=lambda server: None)

    def script(self, server: FakeHttpServer, ticker: str, *replies: Reply) -> None:
        self.prepare(server)
        path, query = self.route(ticker)
        server.script(path, *replies, query=query)

    def data_requests(self, server: FakeHttpServer, ticker: str) -> list[Received]:
        path, query = self.route(ticker)
        hits = server.received_at(path, **query)
        return [r for r in hits if "period1" in r.query] if self.name == "yfinance" else hits


def yahoo_prepare(server: FakeHttpServer) -> None:
    """Cookie and crumb endpoints, and the time-zone probe yfinance makes before a history."""
    server.script("/", Reply.text("<html>ok</html>"))
    server.script("/v1/test/getcrumb", Reply.text("fake-crumb"))
    for ticker in ("AAPL", "MSFT", "IBM"):
        server.script(
            f"/v8/finance/chart/{ticker}", Reply.json(fixture("yahoo_chart_AAPL")), query={"range": "1d"}
        )


CASES = [
    WebCase(
        "alphavantage",
        lambda url, cache, policy, t: AlphaVantageSource(
            AV_KEY, base_url=url, policy=policy, cache_dir=cache, sleep=t.sleep, clock=t.clock
        ),
        lambda ticker: ("/query", {"symbol": ticker}),
        lambda ticker: Reply.json(fixture("alphavantage_daily_adjusted_AAPL")),
        Reply.json(AV_UNKNOWN),
        "unknown ticker NOPE",
    ),
    WebCase(
        "finnhub",
        lambda url, cache, policy, t: FinnhubSource(
            FH_KEY, base_url=url, policy=policy, cache_dir=cache, sleep=t.sleep, clock=t.clock
        ),
        lambda ticker: ("/api/v1/stock/candle", {"symbol": ticker}),
        lambda ticker: Reply.json(fixture("finnhub_candle_AAPL")),
        Reply.json({"s": "no_data"}),
        "no data for NOPE",
        has_adj_close=False,
    ),
    WebCase(
        "yfinance",
        lambda url, cache, policy, t: YFinanceSource(
            base_url=url, policy=policy, cache_dir=cache, sleep=t.sleep, clock=t.clock
        ),
        lambda ticker: (f"/v8/finance/chart/{ticker}", {}),
        lambda ticker: Reply.json(fixture("yahoo_chart_AAPL")),
        Reply.json(YAHOO_NOT_FOUND, status=404),
        "symbol may be delisted",
        prepare=yahoo_prepare,
    ),
]


@pytest.fixture(params=CASES, ids=[c.name for c in CASES])
def case(request: pytest.FixtureRequest) -> WebCase:
    return request.param


def csv_source(tmp_path: Path) -> CsvSource:
    """A second source that has AAPL (not MSFT) for the test window."""
    path = tmp_path / "bars.csv"
    path.write_text(
        "ticker,date,open,high,low,close,adj_close,volume\n"
        "AAPL,2024-01-03,184.22,185.88,183.43,184.25,183.35,58414500\n"
        "AAPL,2024-01-04,182.15,183.09,180.88,181.91,181.02,71983600\n"
    )
    return CsvSource(path)


def cache_files(root: Path) -> list[Path]:
    return sorted(root.rglob("*.json")) if root.exists() else []


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

YF = CASES[2]


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


def test_yfinance_failure_does_not_outlive_its_ticker(fake_server):
    YF.script(fake_server, "NOPE", YF.unknown)
    source = YF.build(fake_server.url, None, POLICY, FakeTime())
    assert "NOPE" in source.fetch(["NOPE"], START, END).missing
    assert source.session.failure is None  # later requests through this session go out again


def test_yfinance_sources_on_different_servers_do_not_share_responses():
    """yfinance memoises responses by Yahoo URL; each source must still reach its own server."""
    served = []
    for close in (111.0, 222.0):
        with FakeHttpServer() as server:
            chart = fixture("yahoo_chart_AAPL")
            quote = chart["chart"]["result"][0]["indicators"]["quote"][0]
            quote["close"] = [close] * len(quote["close"])
            YF.script(server, "AAPL", Reply.json(chart))
            batch = YF.build(server.url, None, POLICY, FakeTime()).fetch(["AAPL"], START, END)
            served.append(set(batch.bars["close"].to_list()))
            assert len(YF.data_requests(server, "AAPL")) == 1
    assert served == [{111.0}, {222.0}]


@pytest.mark.parametrize("cached", [True, False], ids=["cache_dir", "no_cache_dir"])
def test_yfinance_keeps_its_own_caches_out_of_the_home_folder(
    cached, fake_server, tmp_path, isolated_pm_home, monkeypatch
):
    """yfinance's time-zone and cookie databases land in the source's folder, not ~/.cache."""
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    cache_dir = tmp_path / "http-cache" if cached else None
    YF.script(fake_server, "AAPL", YF.ok("AAPL"))
    source = YF.build(fake_server.url, cache_dir, POLICY, FakeTime())
    assert source.fetch(["AAPL"], START, END).bars.height == 3

    assert not (home / ".cache" / "py-yfinance").exists()
    assert not home.exists()  # nothing at all under the home folder
    expected = (cache_dir / "yfinance" if cache_dir else isolated_pm_home / "tmp") / "py-yfinance"
    assert source.yfinance_cache_dir == expected
    assert {"tkr-tz.db", "cookies.db"} <= {p.name for p in expected.iterdir()}
