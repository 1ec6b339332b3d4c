"""yfinance specifics (per-ticker failures, per-server responses, its own caches), against a local
server; the behaviour all web sources share is in ``test_web_sources.py``."""

from __future__ import annotations

import pytest

from tests import http_fake
from tests.http_fake import POLICY, FakeHttpServer, FakeTime, Reply
from tests.web_cases import (
    CASES,
    END,
    START,
    fixture,
)

fake_server = http_fake.fake_server  # the scripted 127.0.0.1 server, as a fixture


YF = CASES[2]


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
