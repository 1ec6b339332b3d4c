"""Restatements: a re-delivered bar that differs from the stored one is recorded, then replaced or
quarantined by policy; float noise is not a restatement; the docs list the history findings."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from model_code.market_data.ingestion import ingest_window
from model_code.market_data.sources.fallback import FallbackChain
from model_code.validation import ValidationRules
from model_code.validation.findings import HISTORY_KINDS
from model_code.validation.restatements import restated_rows
from tests.conftest import clean_bars
from tests.test_docs import markdown_tables
from tests.unit.test_unconfirmed_jumps import FrameSource

ROOT = Path(__file__).resolve().parents[2]
PRICES = ["open", "high", "low", "close", "adj_close"]
START = dt.date(2019, 1, 2)


def _stored_bars(bars: pl.DataFrame) -> pl.DataFrame:
    return bars.select("ticker", "date", *PRICES, "volume", "source")


def test_a_difference_beyond_the_tolerance_is_a_restatement_and_noise_is_not():
    stored = clean_bars(tickers=("AAPL",), n=4)
    redelivered = stored.with_row_index("_row").with_columns(
        close=pl.when(pl.col("_row") == 1)
        .then(pl.col("close") * (1 + 1e-12))  # a text round trip
        .when(pl.col("_row") == 2)
        .then(pl.col("close") * (1 + 1e-6))  # a real correction, however small
        .otherwise(pl.col("close")),
        adj_close=pl.when(pl.col("_row") == 3).then(None).otherwise(pl.col("adj_close")),  # vanished
    )
    found = restated_rows(redelivered, _stored_bars(stored), 1e-9)
    assert found["_row"].to_list() == [2, 3]
    assert found["changed"].to_list() == ["close", "adj_close"]
    assert found["max_rel_change"][0] == pytest.approx(1e-6)


def _redelivered_plus_5pct(bars: pl.DataFrame, ticker: str) -> pl.DataFrame:
    hit = pl.col("ticker") == ticker
    return bars.with_columns(
        [pl.when(hit).then(pl.col(c) * 1.05).otherwise(pl.col(c)).alias(c) for c in PRICES]
    )


def _ingest(warehouse, bars, rules=None):
    days = sorted(bars["date"].unique())
    chain = FallbackChain([FrameSource(bars)])
    return ingest_window(warehouse, chain, sorted(bars["ticker"].unique()), days[0], days[-1], rules=rules)


def test_the_5pct_redelivery_is_recorded_and_replaces_by_default(warehouse):
    """The probe: every AAPL price +5 % re-delivered over 19 stored bars."""
    bars = clean_bars(tickers=("AAPL", "MSFT"), start=START, n=19)
    _ingest(warehouse, bars)
    before = warehouse.query("SELECT * FROM market.ohlcv WHERE ticker = 'AAPL' ORDER BY date")

    report = _ingest(warehouse, _redelivered_plus_5pct(bars, "AAPL"))
    assert report.bars_restated == 19 and report.rows_written == 38
    after = warehouse.query("SELECT * FROM market.ohlcv WHERE ticker = 'AAPL' ORDER BY date")
    assert after["close"].to_list() == pytest.approx((before["close"] * 1.05).to_list())
    revisions = warehouse.query("SELECT * FROM market.ohlcv_revisions ORDER BY date")
    assert revisions.height == 19 and set(revisions["ticker"]) == {"AAPL"}
    assert set(revisions["action"]) == {"replaced"}
    assert revisions["old_close"].to_list() == before["close"].to_list()
    assert revisions["new_close"].to_list() == after["close"].to_list()
    assert revisions["old_volume"].to_list() == revisions["new_volume"].to_list()  # volume unchanged
    restated = warehouse.query("SELECT * FROM market.data_quality WHERE kind = 'restated' ORDER BY date")
    assert restated.height == 19 and set(restated["severity"]) == {"warn"}
    assert "close " in restated["detail"][0] and "volume" not in restated["detail"][0]
    assert restated["detail"][0].endswith("(replaced)")

    # Delivering the same values again changes nothing and records nothing new.
    again = _ingest(warehouse, _redelivered_plus_5pct(bars, "AAPL"))
    assert again.bars_restated == 0 and warehouse.count("market.ohlcv_revisions") == 19


def test_quarantine_policy_keeps_the_stored_bars(warehouse):
    bars = clean_bars(tickers=("AAPL", "MSFT"), start=START, n=19)
    _ingest(warehouse, bars)
    before = warehouse.query("SELECT * EXCLUDE (ingested_at) FROM market.ohlcv ORDER BY ticker, date")

    rules = ValidationRules(restatement_policy="quarantine")
    report = _ingest(warehouse, _redelivered_plus_5pct(bars, "AAPL"), rules=rules)
    after = warehouse.query("SELECT * EXCLUDE (ingested_at) FROM market.ohlcv ORDER BY ticker, date")
    assert after.equals(before)
    assert report.rows_quarantined == 19 and report.bars_restated == 19
    assert report.rows_received == report.rows_accepted + report.rows_quarantined
    reasons = warehouse.query("SELECT reason, count(*) n FROM market.quarantine GROUP BY reason").rows()
    assert reasons == [("restated_bar", 19)]
    assert set(warehouse.query("SELECT action FROM market.ohlcv_revisions")["action"]) == {"quarantined"}


def test_unknown_policy_is_refused():
    with pytest.raises(ValueError, match="restatement_policy"):
        ValidationRules(restatement_policy="ignore")


def test_restated_bar_that_breaks_a_rule_is_quarantined_for_that_rule(warehouse):
    bars = clean_bars(tickers=("AAPL",), start=START, n=10)
    _ingest(warehouse, bars)
    idx = pl.int_range(pl.len())
    spiked = bars.with_columns(
        [pl.when(idx == 5).then(pl.col(c) * 10).otherwise(pl.col(c)).alias(c) for c in PRICES]
    )
    report = _ingest(warehouse, spiked)
    assert report.rows_written == 9 and report.bars_restated == 1
    assert warehouse.query("SELECT reason FROM market.quarantine")["reason"].to_list() == ["price_spike"]
    assert warehouse.query("SELECT action FROM market.ohlcv_revisions")["action"].to_list() == ["quarantined"]
    stored = warehouse.query("SELECT close FROM market.ohlcv ORDER BY date")["close"]
    assert stored.to_list() == pytest.approx(bars["close"].to_list())  # history untouched


def test_validation_doc_lists_the_history_findings():
    sections = markdown_tables((ROOT / "docs" / "validation.md").read_text())
    (kinds,) = sections["Bar history findings → market.data_quality"]
    assert {r["kind"]: r["severity"] for r in kinds} == HISTORY_KINDS
