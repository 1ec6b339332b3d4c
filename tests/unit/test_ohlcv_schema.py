import datetime as dt

import polars as pl
import pytest

from model_code.market_data.schema import OHLCV_COLUMNS, OhlcvSchemaError, conform_ohlcv


def test_conform_maps_vendor_column_names_and_adds_missing_optional_columns():
    raw = pl.DataFrame({"Symbol": ["AAPL"], "Date": ["2019-01-02"], "Close": [157.9], "Adj Close": [154.8]})
    out = conform_ohlcv(raw, source="csv", origin="x.csv")
    assert list(out.columns) == [*OHLCV_COLUMNS, "_unparseable"]
    row = out.row(0, named=True)
    assert row["ticker"] == "AAPL" and row["date"] == dt.date(2019, 1, 2)
    assert row["adj_close"] == 154.8 and row["open"] is None and row["volume"] is None
    assert row["source"] == "csv" and row["_unparseable"] is None


def test_conform_names_the_missing_required_column_and_the_file():
    raw = pl.DataFrame({"ticker": ["AAPL"], "date": ["2019-01-02"], "open": [1.0]})
    with pytest.raises(OhlcvSchemaError, match=r"prices\.csv: missing required column\(s\) 'close'"):
        conform_ohlcv(raw, source="csv", origin="prices.csv")


def test_conform_flags_values_that_do_not_parse_instead_of_dropping_the_row():
    raw = pl.DataFrame({"ticker": ["A", "A"], "date": ["2019-01-02", "2019-13-45"], "close": ["1.5", "abc"]})
    out = conform_ohlcv(raw, source="csv", origin="x")
    assert out.height == 2
    assert out["_unparseable"].to_list() == [
        None,
        "date: '2019-13-45' is not a valid ISO 8601 date YYYY-MM-DD",
    ]
    assert out["date"].to_list() == [dt.date(2019, 1, 2), None]


def test_conform_converts_timestamps_to_dates():
    raw = pl.DataFrame({"ticker": ["A"], "date": [dt.datetime(2019, 1, 2, 0, 0)], "close": [1.0]})
    assert conform_ohlcv(raw, source="p", origin="x")["date"].to_list() == [dt.date(2019, 1, 2)]
