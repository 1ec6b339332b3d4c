"""The scripted web-source harness shared by the web-source tests: one :class:`WebCase` per source
(Alpha Vantage, Finnhub, yfinance) with its routes and documented response bodies
(``tests/fixtures/web``), served by the local fake server of ``tests/http_fake.py``."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from model_code.market_data.sources.alphavantage import AlphaVantageSource
from model_code.market_data.sources.base import OhlcvSource
from model_code.market_data.sources.files import CsvSource
from model_code.market_data.sources.finnhub import FinnhubSource
from model_code.market_data.sources.http import HttpPolicy
from model_code.market_data.sources.yahoo import YFinanceSource
from tests.http_fake import FakeHttpServer, FakeTime, Received, Reply

AV_KEY, FH_KEY = "SECRET-AV-123", "SECRET-FH-456"
START, END = dt.date(2024, 1, 3), dt.date(2024, 1, 5)
# Documented response bodies for AAPL, 2024-01-02 .. 2024-01-08 (tests/fixtures/web).
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "web"


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
