"""Outages fail loudly: web sources that cannot be reached end the run with each source's last
error (or, by config, with a failing ERROR check), never as an empty success; a partial outage
is listed per ticker. Nothing here leaves 127.0.0.1: a closed port refuses the connection, and
the scripted server of ``tests/http_fake.py`` plays a source answering 503."""

from __future__ import annotations

import datetime as dt
import socket

import dagster as dg
import duckdb
import pytest
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from model_code.market_data.sources.fallback import FallbackChain
from pm_assets.features.daily import daily_features
from pm_assets.market import market_assets
from pm_resources import MarketDataResource, WarehouseResource
from tests import http_fake
from tests.http_fake import POLICY, FakeTime, Reply
from tests.web_cases import AV_UNKNOWN, CASES, END, START

fake_server = http_fake.fake_server
AV = CASES[0]


def closed_port() -> int:
    """A local port nobody listens on (bound, then released): connecting is refused at once."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _web_resources(tmp_path, url: str, order: list[str]) -> dict:
    universe = tmp_path / "universe.yaml"
    universe.write_text("tickers: [AAPL, MSFT]\n")
    market = MarketDataResource(
        fallback_order=order,
        universe_path=str(universe),
        alphavantage_key="test-av-key",
        finnhub_key="test-fh-key",
        alphavantage_url=url,
        finnhub_url=url,
        requests_per_minute={"alphavantage": 0, "finnhub": 0},
        max_attempts=2,  # one retry each (1 s backoff), as the probe saw them retry
        cache_dir=str(tmp_path / "cache"),
    )
    return {"warehouse": WarehouseResource(database=str(tmp_path / "wh.duckdb")), "market_data": market}


def _run(resources, start: dt.date, end: dt.date, config: dict | None = None, assets=market_assets):
    tags = {ASSET_PARTITION_RANGE_START_TAG: str(start), ASSET_PARTITION_RANGE_END_TAG: str(end)}
    run_config = {"ops": {"market__ohlcv": {"config": config}}} if config else None
    return dg.materialize(assets, resources=resources, tags=tags, run_config=run_config, raise_on_error=False)


def _bars(tmp_path) -> int:
    with duckdb.connect(str(tmp_path / "wh.duckdb"), read_only=True) as conn:
        return conn.execute("SELECT count(*) FROM market.ohlcv").fetchone()[0]


def test_offline_web_sources_fail_the_run_naming_each_source_and_its_error(tmp_path):
    """The probe: no network, Alpha Vantage and Finnhub retried, 0 rows. Now the run fails."""
    url = f"http://127.0.0.1:{closed_port()}"
    result = _run(_web_resources(tmp_path, url, ["alphavantage", "finnhub"]), START, END)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert failure.step_key == "market__ohlcv"
    description = failure.step_failure_data.user_failure_data.description
    assert f"no bars for {START}..{END}: every source asked failed" in description
    for source in ("alphavantage", "finnhub"):
        assert f"{source}: connection failed (ConnectionError) after 2 attempts" in description
    assert "test-av-key" not in description and "test-fh-key" not in description
    assert _bars(tmp_path) == 0


def test_offline_sources_can_succeed_with_a_failing_error_check_instead(tmp_path):
    url = f"http://127.0.0.1:{closed_port()}"
    resources = _web_resources(tmp_path, url, ["alphavantage", "finnhub"])
    assets = [*market_assets, daily_features]
    result = _run(resources, START, END, {"on_outage": "error_check"}, assets=assets)
    assert result.success
    skipped = {e.step_key for e in result.all_events if e.event_type_value == "STEP_SKIPPED"}
    assert skipped == {"features__daily"}  # no features computed on a night without bars
    evaluations = {c.check_name: c for c in result.get_asset_check_evaluations()}
    check = evaluations["ohlcv_sources_available"]
    assert check.passed is False and check.severity == dg.AssetCheckSeverity.ERROR
    meta = {k: v.value for k, v in check.metadata.items()}
    assert meta["sources_failed"] == 2.0 and meta["tickers_unavailable"] == 2.0
    assert "alphavantage: connection failed" in meta["source_errors"]
    assert "finnhub: connection failed" in meta["source_errors"]
    assert meta["unavailable"].startswith("AAPL: alphavantage: connection failed")
    # The window is not materialized, so downstream steps would skip; nothing was written.
    assert result.asset_materializations_for_node("market__ohlcv") == []
    assert _bars(tmp_path) == 0


def test_a_partial_outage_is_listed_per_ticker_and_the_rest_is_stored(fake_server, tmp_path):
    AV.script(fake_server, "AAPL", AV.ok("AAPL"))
    AV.script(fake_server, "MSFT", Reply(503))
    result = _run(_web_resources(tmp_path, fake_server.url, ["alphavantage"]), START, END)
    assert result.success
    check = next(c for c in result.get_asset_check_evaluations() if c.check_name == "ohlcv_sources_available")
    meta = {k: v.value for k, v in check.metadata.items()}
    assert check.passed and meta["tickers_unavailable"] == 1.0
    assert meta["unavailable"].startswith("MSFT: alphavantage: HTTP 503 after 2 attempts (")
    assert _bars(tmp_path) == 3  # AAPL's three sessions


@pytest.mark.parametrize(
    ("reply", "unavailable"),
    [
        (Reply(503), True),
        (Reply(429, {"Retry-After": "3600"}), True),  # asked to wait past the backoff cap
        (Reply.json({"Note": "Our standard API call frequency is 5 calls per minute"}), True),
        (Reply.json(AV_UNKNOWN), False),  # it answered: no such ticker
    ],
)
def test_unavailability_is_told_from_no_such_ticker_by_the_error_raised(fake_server, reply, unavailable):
    """A ticker whose request raised ``SourceUnavailable`` is marked so by the source itself
    (``SourceBatch.unavailable``), never guessed from the text of its reason."""
    AV.script(fake_server, "AAPL", reply)
    source = AV.build(fake_server.url, None, POLICY, FakeTime())
    assert ("AAPL" in source.fetch(["AAPL"], START, END).unavailable) is unavailable
    fetched = FallbackChain([source]).fetch(["AAPL"], START, END)
    assert ("AAPL" in fetched.unavailable) is unavailable
    assert bool(fetched.outage()) is unavailable  # "no such ticker" is not an outage


def test_a_refused_connection_is_unavailable():
    source = AV.build(f"http://127.0.0.1:{closed_port()}", None, POLICY, FakeTime())
    fetched = FallbackChain([source]).fetch(["AAPL"], START, END)
    assert fetched.unavailable["AAPL"]["alphavantage"].startswith(
        "connection failed (ConnectionError) after 4"
    )
    assert set(fetched.outage()) == {"alphavantage"}
