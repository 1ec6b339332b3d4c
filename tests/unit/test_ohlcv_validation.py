"""Each fault kind, injected into clean bars, is caught with the right reason or finding."""

import datetime as dt

import polars as pl
import pytest

from model_code.market_data.schema import conform_ohlcv
from model_code.validation import QUARANTINE_REASONS, ValidationRules, stale_tickers, validate_ohlcv
from tests.conftest import clean_bars


def _with(bars: pl.DataFrame, i: int, **values) -> pl.DataFrame:
    """``bars`` with row ``i`` changed."""
    rows = bars.to_dicts()
    rows[i].update(values)
    return pl.DataFrame(rows, schema=bars.schema)


def test_clean_bars_pass_untouched():
    bars = clean_bars()
    result = validate_ohlcv(bars)
    assert result.quarantined.height == 0
    assert result.accepted.height == bars.height
    assert result.findings.height == 0


ROW_FAULTS = {
    "missing_key": {"ticker": None},
    "missing_close": {"close": None},
    "non_finite_value": {"high": float("inf")},
    "non_trading_day": {"date": dt.date(2019, 1, 5)},  # a Saturday
    "non_positive_price": {"open": 0.0},
    "price_below_minimum": {"open": 0.001, "low": 0.001},
    "high_below_open_close": {"high": 1.0, "low": 0.9},
    "low_above_open_close": {"low": 1e6, "high": 2e6},
    "negative_volume": {"volume": -5.0},
}


@pytest.mark.parametrize("reason", sorted(ROW_FAULTS))
def test_each_row_fault_is_quarantined_with_its_reason(reason):
    bars = clean_bars()
    faulty = _with(bars, 5, **ROW_FAULTS[reason])
    result = validate_ohlcv(faulty)
    assert result.quarantined.height == 1, result.quarantined
    q = result.quarantined.row(0, named=True)
    assert q["reason"] == reason
    assert reason in q["detail"]
    assert result.accepted.height == bars.height - 1


def test_unparseable_value_is_quarantined_naming_the_column():
    raw = clean_bars().drop("_unparseable", "source").with_columns(pl.col(pl.Float64).cast(pl.String))
    raw = _with(raw, 3, close="n/a")
    result = validate_ohlcv(conform_ohlcv(raw, source="csv", origin="x.csv"))
    q = result.quarantined.row(0, named=True)
    assert (q["reason"], result.quarantined.height) == ("unparseable_value", 1)
    assert "column close" in q["detail"]


def test_exact_duplicate_keeps_one_copy_and_quarantines_the_repeat():
    bars = clean_bars()
    doubled = pl.concat([bars, bars[7]])
    result = validate_ohlcv(doubled)
    assert result.quarantine_counts()["duplicate_key"] == 1
    assert result.accepted.height == bars.height


def test_conflicting_duplicates_are_all_quarantined():
    bars = clean_bars()
    other = bars[7].with_columns(close=pl.col("close") * 1.001, high=pl.col("high") * 1.002)
    result = validate_ohlcv(pl.concat([bars, other]))
    assert result.quarantine_counts()["conflicting_duplicate"] == 2
    assert result.accepted.height == bars.height - 1


def test_one_bar_spike_that_reverts_is_quarantined_but_a_lasting_jump_is_only_a_finding():
    bars = clean_bars(tickers=("AAA",))
    p = bars["close"][10]
    spiked = _with(bars, 10, open=p * 3, high=p * 3.1, close=p * 3, adj_close=p * 3)
    result = validate_ohlcv(spiked)
    assert result.quarantine_counts()["price_spike"] == 1

    # A lasting level change (everything from row 10 on is 3x): kept, reported as a jump.
    lasting = bars.with_columns(
        [
            pl.when(pl.int_range(pl.len()) >= 10).then(pl.col(c) * 3).otherwise(pl.col(c)).alias(c)
            for c in ("open", "high", "low", "close", "adj_close")
        ]
    )
    result = validate_ohlcv(lasting)
    assert result.quarantined.height == 0
    assert result.finding_counts() == {"jump": 1}


def test_split_absorbed_by_adj_close_is_reported_as_split_not_rejected():
    bars = clean_bars(tickers=("AAA",))
    split = bars.with_columns(
        [
            pl.when(pl.int_range(pl.len()) >= 10).then(pl.col(c) / 2).otherwise(pl.col(c)).alias(c)
            for c in ("open", "high", "low", "close")
        ]
    )
    result = validate_ohlcv(split)
    assert result.quarantined.height == 0
    assert result.finding_counts() == {"split": 1}
    ratio = float(result.findings["detail"][0].split()[2])
    assert 0.45 < ratio < 0.55


def test_bad_adjustment_is_reported():
    bars = clean_bars(tickers=("AAA",))
    bad = bars.with_columns(
        adj_close=pl.when(pl.int_range(pl.len()) >= 10)
        .then(pl.col("adj_close") * 2)
        .otherwise(pl.col("adj_close"))
    )
    assert validate_ohlcv(bad).finding_counts() == {"adjustment_jump": 1}


def test_calendar_gap_and_zero_volume_are_findings_and_rows_are_kept():
    bars = clean_bars(tickers=("AAA",))
    gapped = pl.concat([bars[:10], bars[13:]])
    gapped = _with(gapped, 4, volume=0.0)
    result = validate_ohlcv(gapped)
    assert result.quarantined.height == 0 and result.accepted.height == gapped.height
    gaps = result.findings.filter(pl.col("kind") == "calendar_gap")
    assert gaps.height == 1 and gaps["detail"][0].startswith("3 session(s)")
    assert gaps["date"][0] == bars["date"][13]
    assert result.finding_counts()["zero_volume"] == 1


def test_previous_stored_bar_gives_the_first_bar_of_a_batch_its_context():
    bars = clean_bars(tickers=("AAA",))
    previous = (
        bars[:1]
        .select("ticker", "date", "close", "adj_close")
        .with_columns(close=pl.col("close") / 3, adj_close=pl.col("adj_close") / 3)
    )
    result = validate_ohlcv(bars[1:], previous=previous)
    assert result.finding_counts() == {"jump": 1}
    assert result.findings["date"][0] == bars["date"][1]


def test_close_only_series_pass_without_fabricated_ohlc():
    bars = clean_bars().with_columns(open=None, high=None, low=None, volume=None)
    result = validate_ohlcv(bars)
    assert result.quarantined.height == 0
    assert result.accepted["high"].null_count() == bars.height


def test_min_price_threshold_is_configurable():
    bars = _with(clean_bars(), 2, low=0.5, open=0.6, close=0.7, adj_close=0.7)
    assert (
        validate_ohlcv(bars, rules=ValidationRules(min_price=1.0)).quarantine_counts()["price_below_minimum"]
        == 1
    )


def test_every_row_lands_in_exactly_one_output_and_quarantine_ids_are_stable():
    bars = clean_bars()
    faulty = _with(_with(bars, 3, close=None), 9, volume=-1.0)
    a = validate_ohlcv(faulty)
    b = validate_ohlcv(faulty.reverse())
    assert a.accepted.height + a.quarantined.height == faulty.height
    assert sorted(a.quarantined["quarantine_id"]) == sorted(b.quarantined["quarantine_id"])
    assert set(a.quarantine_counts()) == set(QUARANTINE_REASONS)


def test_staleness_counts_sessions_not_calendar_days():
    last = {"AAA": dt.date(2019, 12, 20), "BBB": dt.date(2019, 12, 31), "CCC": None}
    # 2019-12-20 (Fri) -> 2020-01-02: 23, 24, 26, 27, 30, 31, Jan 2 = 7 sessions behind.
    assert stale_tickers(last, dt.date(2020, 1, 2), max_sessions=5) == {"AAA": 7, "CCC": None}


# ---- gaps on the stored series, and every received row accounted for ------------------------


def _ingest(warehouse, bars: pl.DataFrame, start: dt.date, end: dt.date):
    from model_code.market_data.ingestion import ingest_window
    from model_code.market_data.sources.fallback import FallbackChain
    from tests.unit.test_unconfirmed_jumps import FrameSource

    return ingest_window(
        warehouse, FallbackChain([FrameSource(bars)]), sorted(set(bars["ticker"])), start, end
    )


def _gaps(warehouse) -> list[tuple]:
    return warehouse.query(
        "SELECT ticker, date, detail FROM market.data_quality WHERE kind = 'calendar_gap' ORDER BY ticker, date"
    ).rows()


def test_partial_redelivery_reports_no_gap_the_stored_series_does_not_have(warehouse):
    bars = clean_bars(tickers=("AAA",), n=10)
    days = bars["date"].to_list()
    _ingest(warehouse, bars, days[0], days[-1])
    partial = pl.concat([bars[:4], bars[5:]])  # the vendor's file lacks one stored session
    report = _ingest(warehouse, partial, days[0], days[-1])
    assert report.validation.finding_counts().get("calendar_gap", 0) == 0
    assert _gaps(warehouse) == [] and warehouse.count("market.ohlcv") == 10


def test_a_late_bar_closes_the_stored_gap_after_it(warehouse):
    bars = clean_bars(tickers=("AAA",), n=10)
    days = bars["date"].to_list()
    _ingest(warehouse, pl.concat([bars[:4], bars[5:]]), days[0], days[-1])
    assert [(t, d) for t, d, _ in _gaps(warehouse)] == [("AAA", days[5])]
    _ingest(warehouse, bars[4:5], days[4], days[4])  # the missing session, one night late
    assert _gaps(warehouse) == []


def test_nightly_batches_of_one_session_measure_gaps_from_the_last_stored_bar(warehouse):
    bars = clean_bars(tickers=("AAA", "BBB"), n=6)
    days = sorted(set(bars["date"]))
    _ingest(warehouse, bars.filter(pl.col("date") <= days[3]), days[0], days[3])
    night = [
        bars.filter((pl.col("date") == days[4]) & (pl.col("ticker") == "BBB")),
        bars.filter(pl.col("date") == days[5]),
    ]
    for day, batch in zip(days[4:], night, strict=True):
        _ingest(warehouse, batch, day, day)
    # AAA had no bar on days[4]: one real gap, measured from its last stored bar; nothing else,
    # though each nightly batch holds a single session.
    assert _gaps(warehouse) == [("AAA", days[5], f"1 session(s) without a bar since {days[3]}")]


def test_rows_outside_the_window_are_counted_not_stored(warehouse):
    from model_code.market_data.ingestion import ingest_window
    from model_code.market_data.sources.base import SourceBatch
    from model_code.market_data.sources.fallback import FallbackChain

    bars = clean_bars(tickers=("AAA",), n=10)
    days = bars["date"].to_list()

    class Unfiltered:  # a source that sends its whole file, whatever the window
        name = "unfiltered"

        def fetch(self, tickers, start, end):
            return SourceBatch(bars=bars)

        def list_tickers(self):
            return ["AAA"]

    report = ingest_window(warehouse, FallbackChain([Unfiltered()]), ["AAA"], days[3], days[5])
    assert (report.rows_received, report.rows_accepted, report.rows_outside_window) == (10, 3, 7)
    assert warehouse.count("market.ohlcv") == 3


def test_a_batch_whose_rows_do_not_add_up_raises_and_writes_nothing(warehouse, monkeypatch):
    from model_code.market_data import ingestion

    def losing(*args, **kwargs):  # a validator that silently drops a row
        result = validate_ohlcv(*args, **kwargs)
        result.accepted = result.accepted[:-1]
        return result

    monkeypatch.setattr(ingestion, "validate_ohlcv", losing)
    bars = clean_bars(tickers=("AAA",), n=5)
    days = bars["date"].to_list()
    with pytest.raises(ingestion.RowCountError, match="5 rows received but 4 accounted for"):
        _ingest(warehouse, bars, days[0], days[-1])
    assert warehouse.count("market.ohlcv") == 0 and warehouse.count("market.trading_sessions") == 0


def test_last_bar_before_a_window_is_the_whole_last_row(warehouse):
    """A last bar without adj_close (a Finnhub bar after Alpha Vantage ones) is context as it is:
    its NULL adj_close is not replaced by an older bar's."""
    bars = clean_bars(tickers=("AAA",), n=3)
    bars = bars.with_columns(
        adj_close=pl.when(pl.int_range(pl.len()) == 2).then(None).otherwise(pl.col("adj_close"))
    )
    days = bars["date"].to_list()
    _ingest(warehouse, bars, days[0], days[-1])
    previous = warehouse.query("@ohlcv_last_bar_before", [days[-1] + dt.timedelta(days=1)])
    assert previous.rows() == [("AAA", days[2], bars["close"][2], None)]
