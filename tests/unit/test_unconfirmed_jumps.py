"""Held jumps: a move beyond the threshold waits for its next bar; nightly and range runs agree.

The rule itself (``judge_jumps``) on hand-made series, then the whole ingestion through a real
DuckDB file: the same bars ingested one session a night and as one range leave identical
``market.ohlcv`` and ``market.quarantine``.
"""

from __future__ import annotations

import datetime as dt

import duckdb
import polars as pl
import pytest

from model_code.market_data.calendar import trading_calendar
from model_code.market_data.ingestion import ingest_window
from model_code.market_data.schema import OHLCV_COLUMNS
from model_code.market_data.sources.base import SourceBatch, missing_tickers, window_filter
from model_code.market_data.sources.fallback import FallbackChain
from model_code.validation import StoredBars, validate_ohlcv
from model_code.validation.jumps import judge_jumps
from model_code.warehouse import Warehouse, apply_ddl
from tests.conftest import clean_bars

LIMIT = 0.5
PRICES = ("open", "high", "low", "close", "adj_close")


class FrameSource:
    """A source serving a fixed frame, filtered to the request like every real source."""

    name = "frame"

    def __init__(self, bars: pl.DataFrame) -> None:
        self.bars = bars

    def fetch(self, tickers, start, end) -> SourceBatch:
        bars = self.bars.filter(window_filter(tickers, start, end))
        return SourceBatch(bars=bars, missing=missing_tickers(bars, tickers, "no bars in the frame"))

    def list_tickers(self) -> list[str]:
        return sorted(self.bars["ticker"].unique())


def _series(prices: list[float], fixed: list[bool] | None = None) -> pl.DataFrame:
    days = trading_calendar().sessions_in_range(dt.date(2019, 1, 2), dt.date(2019, 3, 1))[: len(prices)]
    return pl.DataFrame(
        {
            "ticker": ["X"] * len(prices),
            "date": pl.Series(days).cast(pl.Date),
            "price": prices,
            "fixed": fixed or [False] * len(prices),
        }
    )


@pytest.mark.parametrize(
    ("prices", "verdicts"),
    [
        ([100, 1000, 100, 101], ["accept", "spike", "accept", "accept"]),  # spike, then its reversal
        ([100, 300, 301, 302], ["accept", "accept", "accept", "accept"]),  # a lasting level
        ([100, 101, 1000], ["accept", "accept", "hold"]),  # no next bar yet
        ([100, 1000, 1000, 100, 100], ["accept"] * 5),  # two-day level, then back: both lasting
        # Alternating: each reversal is judged against the kept bar, not against the spike.
        ([100, 1000, 100, 1000, 100], ["accept", "spike", "accept", "spike", "accept"]),
    ],
)
def test_jump_rule_on_candidate_series(prices, verdicts):
    judged = judge_jumps(_series(prices), LIMIT)
    assert judged["verdict"].to_list() == verdicts


def test_stored_bars_are_context_and_decide_a_pending_candidate():
    # The stored bar after a re-delivered spike decides it (a re-run of an old window).
    judged = judge_jumps(_series([100, 1000, 100], fixed=[True, False, True]), LIMIT)
    assert judged["verdict"].to_list() == ["context", "spike", "context"]
    assert judged["decided_by"][1] == judged["date"][2]


def _scaled(
    bars: pl.DataFrame, ticker: str, rows: range | list[int], factor: float, cols=PRICES
) -> pl.DataFrame:
    """``bars`` with the prices ``cols`` of ``ticker``'s rows (0-based, in date order) × factor."""
    idx = pl.int_range(pl.len()).over("ticker")
    hit = (pl.col("ticker") == ticker) & idx.is_in(list(rows))
    return bars.with_columns(
        [pl.when(hit).then(pl.col(c) * factor).otherwise(pl.col(c)).alias(c) for c in cols]
    )


def scenario() -> pl.DataFrame:
    """Eight tickers over 12 sessions, each with a different kind of move."""
    bars = clean_bars(tickers=("CALM", "SPIKE", "LEVEL", "LATE", "TWODAY", "SPLIT", "ALT", "GAP"), n=12)
    bars = _scaled(bars, "SPIKE", [5], 10.0)  # a one-day 10x spike, reverted next day
    bars = _scaled(bars, "LEVEL", range(6, 12), 3.0)  # a lasting level shift
    bars = _scaled(bars, "LATE", [11], 10.0)  # a spike on the last session: still held
    bars = _scaled(bars, "TWODAY", [4, 5], 10.0)  # two days up, then back
    bars = _scaled(bars, "SPLIT", range(6, 12), 0.5, cols=("open", "high", "low", "close"))  # adj absorbs it
    bars = _scaled(bars, "ALT", [3, 5, 7], 10.0)  # alternating spikes
    idx = pl.int_range(pl.len()).over("ticker")
    return bars.filter(~((pl.col("ticker") == "GAP") & idx.is_in([4, 5])))  # two sessions missing


def _stored(wh) -> tuple[pl.DataFrame, pl.DataFrame]:
    ohlcv = wh.query("SELECT * EXCLUDE (ingested_at) FROM market.ohlcv ORDER BY ticker, date")
    quarantine = wh.query(
        "SELECT * EXCLUDE (ingested_at) FROM market.quarantine ORDER BY ticker, date, reason"
    )
    return ohlcv, quarantine


def test_nightly_and_range_runs_store_the_same_bars_and_quarantine(tmp_path):
    bars = scenario()
    days = sorted(bars["date"].unique())
    chain = FallbackChain([FrameSource(bars)])
    tickers = sorted(bars["ticker"].unique())
    outcomes = []
    for name, windows in (("range", [(days[0], days[-1])]), ("nightly", [(d, d) for d in days])):
        conn = duckdb.connect(str(tmp_path / f"{name}.duckdb"))
        apply_ddl(conn)
        wh = Warehouse(conn)
        for start, end in windows:
            report = ingest_window(wh, chain, tickers, start, end)
            assert report.rows_received == report.rows_accepted + report.rows_quarantined + report.rows_held
        outcomes.append((_stored(wh), wh.query("SELECT ticker, date, kind FROM market.data_quality")))
        conn.close()
    (range_ohlcv, range_q), range_dq = outcomes[0]
    (night_ohlcv, night_q), night_dq = outcomes[1]
    assert night_ohlcv.equals(range_ohlcv, null_equal=True)
    assert night_q.equals(range_q, null_equal=True)

    reasons = {(t, r) for t, r in range_q.select("ticker", "reason").iter_rows()}
    assert reasons == {("SPIKE", "price_spike"), ("LATE", "unconfirmed_jump"), ("ALT", "price_spike")}
    assert range_q.filter(pl.col("ticker") == "ALT").height == 3
    n = {t: c for t, c in range_ohlcv.group_by("ticker").len().iter_rows()}
    assert n == {
        "CALM": 12,
        "SPIKE": 11,
        "LEVEL": 12,
        "LATE": 11,
        "TWODAY": 12,
        "SPLIT": 12,
        "ALT": 9,
        "GAP": 10,
    }

    # Findings agree too, but for the nightly runs' record of each release.
    releases = night_dq.filter(pl.col("kind") == "jump_released")
    assert sorted(releases["ticker"]) == ["LEVEL", "TWODAY", "TWODAY"]
    key = ["ticker", "date", "kind"]
    assert night_dq.filter(pl.col("kind") != "jump_released").sort(key).equals(range_dq.sort(key))
    kinds = dict(range_dq.group_by("kind").len().iter_rows())
    # LEVEL's shift and TWODAY's two moves are lasting jumps; GAP's missing sessions are one gap;
    # the spikes' reversals are ordinary bars, and the removed spikes leave gaps in their series.
    assert kinds["jump"] == 3 and kinds["split"] == 1
    gaps = range_dq.filter(pl.col("kind") == "calendar_gap").sort("ticker")["ticker"].to_list()
    assert gaps == ["ALT", "ALT", "ALT", "GAP", "SPIKE"]


def test_a_nightly_spike_and_its_reversal_are_not_stored_as_moves(warehouse):
    """The probe: 10x one night, back the next. Neither night stores a jump."""
    bars = _scaled(clean_bars(tickers=("AAPL",), n=12), "AAPL", [10], 10.0)
    chain = FallbackChain([FrameSource(bars)])
    days = bars["date"].to_list()
    ingest_window(warehouse, chain, ["AAPL"], days[0], days[9])

    spike = ingest_window(warehouse, chain, ["AAPL"], days[10], days[10])
    assert (spike.rows_received, spike.rows_accepted, spike.rows_held) == (1, 0, 1)
    assert warehouse.count("market.ohlcv") == 10
    held = warehouse.query("SELECT date, reason FROM market.quarantine").rows()
    assert held == [(days[10], "unconfirmed_jump")]

    reversal = ingest_window(warehouse, chain, ["AAPL"], days[11], days[11])
    assert (reversal.rows_accepted, reversal.held_rejected, reversal.held_released) == (1, 1, 0)
    stored = warehouse.query("SELECT date, close FROM market.ohlcv ORDER BY date")
    assert days[10] not in stored["date"].to_list()
    assert stored["close"][-1] == pytest.approx(bars["close"][11])  # the reversal is a normal bar
    assert warehouse.query("SELECT date, reason FROM market.quarantine").rows() == [(days[10], "price_spike")]
    kinds = set(warehouse.query("SELECT kind FROM market.data_quality")["kind"])
    assert kinds == {"calendar_gap"}  # the spike's session is missing; no jump was stored


def test_a_lasting_move_held_one_night_is_released_the_next(warehouse):
    bars = _scaled(clean_bars(tickers=("AAPL",), n=12), "AAPL", range(10, 12), 3.0)
    chain = FallbackChain([FrameSource(bars)])
    days = bars["date"].to_list()
    ingest_window(warehouse, chain, ["AAPL"], days[0], days[9])
    assert ingest_window(warehouse, chain, ["AAPL"], days[10], days[10]).rows_held == 1

    confirm = ingest_window(warehouse, chain, ["AAPL"], days[11], days[11])
    assert (confirm.held_released, confirm.rows_written) == (1, 2)
    assert warehouse.count("market.ohlcv") == 12 and warehouse.count("market.quarantine") == 0
    findings = warehouse.query("SELECT date, kind, detail FROM market.data_quality ORDER BY kind")
    assert findings.select("date", "kind").rows() == [(days[10], "jump"), (days[10], "jump_released")]
    assert f"the bar of {days[11]} confirmed" in findings["detail"][1]


def test_a_split_is_not_held():
    bars = _scaled(
        clean_bars(tickers=("AAPL",), n=6), "AAPL", [5], 0.25, cols=("open", "high", "low", "close")
    )
    result = validate_ohlcv(bars)
    assert result.quarantined.height == 0 and result.finding_counts() == {"split": 1}


def test_held_bar_is_judged_against_the_last_stored_bar():
    """Read back the next night, a held bar's next bar is its context; the bar before it is the
    last stored one (the held bar is not in market.ohlcv)."""
    bars = clean_bars(tickers=("AAPL",), n=3)
    last, held, today = bars.row(0, named=True), bars.row(1, named=True), bars.row(2, named=True)
    held_frame = pl.DataFrame([{**held, "close": held["close"] * 10, "adj_close": held["adj_close"] * 10}])
    stored = StoredBars(
        previous=pl.DataFrame([last]).select("ticker", "date", "close", "adj_close"),
        held=held_frame.select(OHLCV_COLUMNS).with_columns(
            quarantine_id=pl.lit("q1"), held_at=pl.lit(dt.datetime(2019, 1, 4))
        ),
    )
    result = validate_ohlcv(bars[2:], stored=stored)
    assert result.rejected_held["reason"].to_list() == ["price_spike"]
    assert result.resolved_held.rows() == [("AAPL", held["date"])]
    assert result.accepted["date"].to_list() == [today["date"]]
    assert result.finding_counts() == {"calendar_gap": 1}
