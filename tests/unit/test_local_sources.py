import datetime as dt

import polars as pl
import pytest

from model_code.market_data.sources import SourceBatch, SourceConfigError, SourceError, SourceFileError
from model_code.market_data.sources.bundled import BundledSource
from model_code.market_data.sources.fallback import FallbackChain
from model_code.market_data.sources.files import CsvSource, ParquetSource
from model_code.market_data.sources.registry import SourceSettings, build_source
from tests.conftest import clean_bars

W0, W1 = dt.date(2019, 1, 1), dt.date(2019, 12, 31)


def test_bundled_source_serves_real_offline_data_without_fabricating_ohlc():
    src = BundledSource()
    tickers = src.list_tickers()
    assert {"AAPL", "MSFT", "SP500", "^GSPC", "^IXIC"} <= set(tickers) and len(tickers) == 23
    batch = src.fetch(["AAPL", "^GSPC", "NOPE"], dt.date(2018, 1, 1), dt.date(2018, 12, 31))
    aapl = batch.bars.filter(pl.col("ticker") == "AAPL")
    gspc = batch.bars.filter(pl.col("ticker") == "^GSPC")
    assert aapl.height == 251 and gspc.height == 251  # 2018 had 251 NYSE sessions
    assert aapl["open"].null_count() == aapl.height and aapl["volume"].null_count() == aapl.height
    assert gspc["high"].null_count() == 0 and (gspc["high"] >= gspc["low"]).all()
    assert batch.missing == {"NOPE": "not in the bundled datasets"}
    assert set(batch.bars["source"]) == {"bundled"}


def test_bundled_source_reports_a_window_without_bars():
    batch = BundledSource().fetch(["^GSPC"], dt.date(2021, 1, 1), dt.date(2021, 1, 31))
    assert batch.bars.height == 0 and "no bundled bars" in batch.missing["^GSPC"]


def _write(tmp_path, fmt: str, frame: pl.DataFrame):
    path = tmp_path / f"bars.{fmt}"
    out = frame.drop("_unparseable", "source")
    out.write_parquet(path) if fmt == "parquet" else out.write_csv(path)
    return path


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_file_sources_filter_tickers_and_window(tmp_path, fmt):
    path = _write(tmp_path, fmt, clean_bars(tickers=("AAA", "BBB"), n=30))
    src = ParquetSource(path) if fmt == "parquet" else CsvSource(path)
    batch = src.fetch(["AAA", "ZZZ"], dt.date(2019, 1, 10), dt.date(2019, 1, 20))
    assert set(batch.bars["ticker"]) == {"AAA"}
    assert batch.bars["date"].min() >= dt.date(2019, 1, 10) and batch.bars["date"].max() <= dt.date(
        2019, 1, 20
    )
    assert batch.bars.height == 7  # sessions Jan 10-18 (Jan 21 is MLK day, outside anyway)
    assert "ZZZ" in batch.missing and set(batch.bars["source"]) == {fmt}
    assert src.list_tickers() == ["AAA", "BBB"]


def test_folder_of_files_is_read_recursively(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    _write(tmp_path / "a", "parquet", clean_bars(tickers=("AAA",)))
    _write(tmp_path / "b", "parquet", clean_bars(tickers=("BBB",)))
    batch = ParquetSource(tmp_path).fetch(["AAA", "BBB"], W0, W1)
    assert set(batch.bars["ticker"]) == {"AAA", "BBB"} and not batch.missing


def test_file_source_errors_name_the_problem(tmp_path):
    with pytest.raises(SourceConfigError, match="does not exist"):
        ParquetSource(tmp_path / "nope.parquet").fetch(["A"], W0, W1)
    with pytest.raises(SourceConfigError, match=r"no \*\.csv files"):
        CsvSource(tmp_path).fetch(["A"], W0, W1)
    pl.DataFrame({"ticker": ["A"], "date": ["2019-01-02"], "open": [1.0]}).write_csv(tmp_path / "x.csv")
    with pytest.raises(SourceFileError, match=r"cannot read \S*x\.csv: missing required column\(s\) 'close'"):
        CsvSource(tmp_path / "x.csv").fetch(["A"], W0, W1)
    with pytest.raises(SourceConfigError, match="needs a path"):
        build_source("parquet", SourceSettings())
    with pytest.raises(SourceConfigError, match="unknown market data source 'bloomberg'"):
        build_source("bloomberg", SourceSettings())


class _Scripted:
    """A source answering from a fixed frame, or failing outright."""

    def __init__(self, name, bars=None, error: SourceError | None = None):
        self.name, self.bars, self.error, self.asked = name, bars, error, []

    def list_tickers(self):
        return None

    def fetch(self, tickers, start, end):
        self.asked.append(list(tickers))
        if self.error:
            raise self.error
        got = self.bars.filter(pl.col("ticker").is_in(list(tickers))).with_columns(source=pl.lit(self.name))
        return SourceBatch(got, {t: "unknown ticker" for t in tickers if t not in set(got["ticker"])})


def test_fallback_first_source_that_answers_wins_per_ticker():
    first = _Scripted("first", clean_bars(tickers=("AAA",)))
    second = _Scripted("second", clean_bars(tickers=("AAA", "BBB")))
    result = FallbackChain([first, second]).fetch(["AAA", "BBB", "CCC"], W0, W1)
    assert result.served_by == {"AAA": "first", "BBB": "second"}
    assert second.asked == [["BBB", "CCC"]]
    assert dict(result.bars.group_by("ticker").agg(pl.col("source").first()).iter_rows()) == {
        "AAA": "first",
        "BBB": "second",
    }
    assert result.failures == {"CCC": ["first: unknown ticker", "second: unknown ticker"]}


def test_fallback_records_a_failing_source_and_moves_on():
    down = _Scripted("down", error=SourceConfigError("PM_FINNHUB_KEY is not set"))
    up = _Scripted("up", clean_bars(tickers=("AAA",)))
    result = FallbackChain([down, up]).fetch(["AAA"], W0, W1)
    assert result.served_by == {"AAA": "up"}
    assert result.source_errors == {"down": "PM_FINNHUB_KEY is not set"}


def test_pinned_tickers_are_asked_only_from_their_source():
    a = _Scripted("a", clean_bars(tickers=("AAA", "BBB")))
    b = _Scripted("b", clean_bars(tickers=("AAA", "BBB")))
    result = FallbackChain([a, b], pinned={"BBB": "b", "CCC": "zzz"}).fetch(["AAA", "BBB", "CCC"], W0, W1)
    assert result.served_by == {"AAA": "a", "BBB": "b"}
    assert a.asked == [["AAA"]] and b.asked == [["BBB"]]
    assert "pinned to source 'zzz'" in result.failures["CCC"][0]
