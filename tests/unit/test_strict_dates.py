"""Dates are ISO 8601 or the configured format, never guessed (issue 9, defect 2).

The probe: a February 2019 AAPL file written ``mm/dd/yyyy``. Read with a guessed format, its
first value ``02/01/2019`` set the format to ``dd/mm/yyyy``: Feb 1 became Jan 2 and overwrote
the stored 2019-01-02 close (157.92 → 166.52), Feb 4 became Apr 2, and the rows whose day was
above 12 vanished. Now every row of it lands in ``market.ohlcv`` or ``market.quarantine`` and
nothing stored moves.
"""

import datetime as dt

import polars as pl
import pytest

from model_code.market_data.calendar import trading_calendar
from model_code.market_data.ingestion import ingest_window
from model_code.market_data.schema import conform_ohlcv
from model_code.market_data.sources.base import SourceConfigError
from model_code.market_data.sources.fallback import FallbackChain
from model_code.market_data.sources.files import CsvSource, ParquetSource
from model_code.market_data.sources.registry import SourceSettings, build_source
from model_code.validation import validate_ohlcv

JAN2_CLOSE = 157.92  # AAPL's raw close on 2019-01-02
FEB1_CLOSE = 166.52  # AAPL's raw close on 2019-02-01, which the guess wrote over it
YEAR = (dt.date(2019, 1, 1), dt.date(2019, 12, 31))


def _february_sessions() -> list[dt.date]:
    days = trading_calendar().sessions_in_range(dt.date(2019, 2, 1), dt.date(2019, 2, 28))
    return [dt.date.fromisoformat(str(d)[:10]) for d in days]


def _aapl(days: list[dt.date], first_close: float) -> pl.DataFrame:
    """AAPL-like bars on ``days`` (USD, raw close = adjusted close), a small deterministic walk."""
    closes = [first_close * (1 + 0.004 * ((i + 2) % 5 - 2)) for i in range(len(days))]
    return pl.DataFrame(
        {
            "ticker": ["AAPL"] * len(days),
            "date": days,
            "open": [c * 0.998 for c in closes],
            "high": [c * 1.01 for c in closes],
            "low": [c * 0.99 for c in closes],
            "close": closes,
            "adj_close": closes,
            "volume": [3.0e7] * len(days),
        }
    )


def _stored(warehouse) -> pl.DataFrame:
    return warehouse.query("SELECT ticker, date, close FROM market.ohlcv ORDER BY date")


@pytest.fixture
def stored_jan2(warehouse, tmp_path):
    """The warehouse with AAPL's 2019-01-02 bar stored from an ISO-dated parquet file."""
    path = tmp_path / "jan2.parquet"
    _aapl([dt.date(2019, 1, 2)], JAN2_CLOSE).write_parquet(path)
    ingest_window(
        warehouse, FallbackChain([ParquetSource(path)]), ["AAPL"], dt.date(2019, 1, 2), dt.date(2019, 1, 2)
    )
    assert _stored(warehouse).rows() == [("AAPL", dt.date(2019, 1, 2), JAN2_CLOSE)]
    return warehouse


@pytest.fixture
def us_csv(tmp_path):
    """February 2019 AAPL bars with dates written mm/dd/yyyy, as a US spreadsheet exports them."""
    days = _february_sessions()
    frame = _aapl(days, FEB1_CLOSE).with_columns(pl.col("date").dt.strftime("%m/%d/%Y"))
    path = tmp_path / "aapl_feb_2019.csv"
    frame.write_csv(path)
    assert frame["date"][0] == "02/01/2019" and len(days) == 19  # Presidents' Day is Feb 18
    return path


def test_probe_us_dates_under_the_iso_default_are_quarantined_and_nothing_stored_moves(stored_jan2, us_csv):
    report = ingest_window(stored_jan2, FallbackChain([CsvSource(us_csv)]), ["AAPL"], *YEAR)
    assert _stored(stored_jan2).rows() == [("AAPL", dt.date(2019, 1, 2), JAN2_CLOSE)]
    quarantine = stored_jan2.query("SELECT date, reason, detail, close FROM market.quarantine")
    # Every received row is accounted for: none stored under a guessed date, none vanished.
    assert report.rows_received == 19 and report.rows_written == 0 and report.rows_quarantined == 19
    assert quarantine.height == 19 and set(quarantine["reason"]) == {"unparseable_date"}
    assert quarantine["date"].null_count() == 19
    # Each row says which text it had, so the file can be fixed or the format configured.
    quoted = quarantine["detail"].str.extract(r"date: '([^']*)' is not a valid ISO 8601 date YYYY-MM-DD")
    assert sorted(quoted.to_list()) == [d.strftime("%m/%d/%Y") for d in _february_sessions()]


def test_probe_us_dates_with_the_configured_format_land_on_their_own_sessions(stored_jan2, us_csv):
    source = build_source("csv", SourceSettings(csv_path=str(us_csv), date_format="%m/%d/%Y"))
    report = ingest_window(stored_jan2, FallbackChain([source]), ["AAPL"], *YEAR)
    stored = _stored(stored_jan2)
    assert report.rows_written == 19 and report.rows_quarantined == 0
    assert stored.row(0) == ("AAPL", dt.date(2019, 1, 2), JAN2_CLOSE)  # untouched
    assert stored["date"].to_list()[1:] == _february_sessions()
    assert stored.filter(pl.col("date") == dt.date(2019, 2, 1))["close"].item() == FEB1_CLOSE


ACCEPTED_ISO = ["2019-02-04", " 2019-02-04 ", "2019-02-04T00:00:00", "2019-02-04 09:30:00-05:00"]
REFUSED_ISO = ["02/04/2019", "04/02/2019", "2019-2-4", "20190204", "2019-02-30", "Feb 4 2019", "0019-02-04"]


@pytest.mark.parametrize("text", ACCEPTED_ISO)
def test_iso_dates_with_or_without_a_time_read_as_the_date_written(text):
    out = conform_ohlcv(
        pl.DataFrame({"ticker": ["A"], "date": [text], "close": ["1"]}), source="csv", origin="x"
    )
    assert out.row(0, named=True)["date"] == dt.date(2019, 2, 4) and out["_unparseable"][0] is None


@pytest.mark.parametrize("text", REFUSED_ISO)
def test_anything_else_is_quarantined_as_unparseable_date_quoting_the_text(text):
    raw = pl.DataFrame({"ticker": ["A"], "date": [text], "close": ["1.5"]})
    result = validate_ohlcv(conform_ohlcv(raw, source="csv", origin="x"))
    row = result.quarantined.row(0, named=True)
    assert result.accepted.height == 0 and row["reason"] == "unparseable_date" and row["date"] is None
    assert f"'{text.strip()}'" in row["detail"]


@pytest.mark.parametrize(
    ("fmt", "text", "day"),
    [
        ("%m/%d/%Y", "2/4/2019", dt.date(2019, 2, 4)),
        ("%d/%m/%Y", "04/02/2019", dt.date(2019, 2, 4)),
        ("%d.%m.%Y", "04.02.2019", dt.date(2019, 2, 4)),
        ("%Y%m%d", "20190204", dt.date(2019, 2, 4)),
        ("%m/%d/%Y", "13/04/2019", None),  # no month 13: refused, not read day-first
        ("%m/%d/%Y", "2019-02-04", None),  # ISO text in a US-format file is not guessed either
        ("%m/%d/%Y", "02/04/19", None),  # a two-digit year is not the year 19
    ],
)
def test_a_configured_format_is_the_only_one_read(fmt, text, day):
    raw = pl.DataFrame({"ticker": ["A"], "date": [text], "close": ["1.5"]})
    result = validate_ohlcv(conform_ohlcv(raw, source="csv", origin="x", date_format=fmt))
    if day is None:
        assert result.quarantined.row(0, named=True)["reason"] == "unparseable_date"
        assert f"does not match '{fmt}'" in result.quarantined["detail"][0]
    else:
        assert result.accepted["date"].to_list() == [day]


def test_real_date_and_timestamp_columns_are_used_as_they_are(tmp_path):
    path = tmp_path / "typed.parquet"
    pl.DataFrame(
        {
            "ticker": ["A", "B"],
            "date": [dt.datetime(2019, 2, 4), dt.datetime(2019, 2, 5)],
            "close": [1.0, 2.0],
        }
    ).write_parquet(path)
    batch = ParquetSource(path, date_format="%d/%m/%Y").fetch(["A", "B"], *YEAR)
    assert batch.bars.sort("ticker")["date"].to_list() == [dt.date(2019, 2, 4), dt.date(2019, 2, 5)]


@pytest.mark.parametrize("fmt", ["%m/%Y", "%d", "%H:%M", "no directives"])
def test_a_date_format_that_cannot_read_back_a_date_is_refused_up_front(tmp_path, fmt):
    with pytest.raises(SourceConfigError, match="does not read back 2019-02-04"):
        build_source("csv", SourceSettings(csv_path=str(tmp_path / "x.csv"), date_format=fmt))


def test_a_huge_unparseable_date_is_quoted_cut_short():
    raw = pl.DataFrame({"ticker": ["A"], "date": ["9" * 10_000], "close": ["1.5"]})
    detail = validate_ohlcv(conform_ohlcv(raw, source="csv", origin="x")).quarantined["detail"][0]
    assert "'" + "9" * 40 + "'…(10000 chars)" in detail and len(detail) < 150
