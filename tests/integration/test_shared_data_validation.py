"""Acceptance: the real faults of the shared 402-ticker data set are quarantined, nothing else.

The counts below were found by the validator and checked by hand against the file:
- 177 bars priced a fraction of a cent (BHF in 2015 before its 2017 listing: 108; SCG after its
  2019 acquisition: 69) -> price_below_minimum;
- CBOE and DIS on 2020-01-10 with high below the close -> high_below_open_close;
- DXC on 2018-06-01 with low above the open -> low_above_open_close;
- VIAB on 2019-12-04 twice, with different lows and volumes -> conflicting_duplicate (both).
"""

import datetime as dt

import polars as pl

from model_code.evaluation.clean_bars import load_clean_bars
from model_code.market_data.ingestion import ingest_window
from model_code.market_data.sources.registry import SourceSettings, build_chain

ROWS_IN_FILE = 497_319


def test_shared_parquet_faults_are_quarantined_with_reasons_and_every_other_row_kept(
    shared_parquet, warehouse
):
    tickers = pl.read_parquet(shared_parquet, columns=["ticker"])["ticker"].unique().sort().to_list()
    assert len(tickers) == 402
    chain = build_chain(["parquet"], SourceSettings(parquet_path=str(shared_parquet)))
    report = ingest_window(warehouse, chain, tickers, dt.date(2015, 1, 12), dt.date(2020, 1, 10))

    assert report.rows_received == ROWS_IN_FILE
    assert {r: n for r, n in report.validation.quarantine_counts().items() if n} == {
        "price_below_minimum": 177,
        "high_below_open_close": 2,
        "low_above_open_close": 1,
        "conflicting_duplicate": 2,
    }
    assert warehouse.count("market.quarantine") == 182
    assert warehouse.count("market.ohlcv") == ROWS_IN_FILE - 182

    by_ticker = dict(
        warehouse.query(
            "SELECT ticker, count(*) FROM market.quarantine WHERE reason = 'price_below_minimum' GROUP BY ticker"
        ).iter_rows()
    )
    assert by_ticker == {"BHF": 108, "SCG": 69}
    ohlc = warehouse.query(
        "SELECT ticker, date, reason FROM market.quarantine WHERE reason <> 'price_below_minimum' ORDER BY ticker, date"
    ).rows()
    assert ohlc == [
        ("CBOE", dt.date(2020, 1, 10), "high_below_open_close"),
        ("DIS", dt.date(2020, 1, 10), "high_below_open_close"),
        ("DXC", dt.date(2018, 6, 1), "low_above_open_close"),
        ("VIAB", dt.date(2019, 12, 4), "conflicting_duplicate"),
        ("VIAB", dt.date(2019, 12, 4), "conflicting_duplicate"),
    ]
    # Findings are reported, not rejected: zero-volume bars, calendar gaps, lasting jumps
    # (PCG's 2019 bankruptcy moves, UA's unadjusted share-class split, BHF's real listing).
    assert report.validation.finding_counts() == {"calendar_gap": 26, "jump": 4, "zero_volume": 219}

    # The research loader (reports, benchmarks, real-data tests) sees exactly the stored bars.
    clean = load_clean_bars(shared_parquet)
    assert clean.raw_rows == ROWS_IN_FILE and sum(clean.quarantined.values()) == 182
    stored = warehouse.query("SELECT * EXCLUDE (ingested_at) FROM market.ohlcv ORDER BY ticker, date")
    assert stored.equals(clean.bars, null_equal=True)

    # Re-running the same window writes nothing new anywhere.
    again = ingest_window(warehouse, chain, tickers, dt.date(2015, 1, 12), dt.date(2020, 1, 10))
    assert again.rows_quarantined == 182
    assert warehouse.count("market.ohlcv") == ROWS_IN_FILE - 182
    assert warehouse.count("market.quarantine") == 182
