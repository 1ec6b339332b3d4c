"""Broken files fail clearly and fall back (issue 9, defect 6 / scope 6).

The probe: a truncated Parquet file listed before a good CSV. polars raised "File out of
specification" without the file's name, and the fallback chain did not move on. Now every
read error is a :class:`SourceFileError` naming the file and the reason, the chain serves the
CSV, and a folder with one bad file serves the others and reports it.
"""

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from model_code.market_data.sources import SourceConfigError, SourceError, SourceFileError
from model_code.market_data.sources.fallback import FallbackChain
from model_code.market_data.sources.files import CsvSource, ParquetSource
from model_code.market_data.sources.registry import SourceSettings, build_chain
from tests.conftest import clean_bars

W0, W1 = dt.date(2019, 1, 1), dt.date(2019, 12, 31)


def _bars(tickers=("AAA", "BBB")) -> pl.DataFrame:
    return clean_bars(tickers=tickers, n=10).drop("_unparseable", "source")


def _parquet(path: Path, tickers=("AAA", "BBB")) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    _bars(tickers).write_parquet(path)
    return path


def _truncated(path: Path, tickers=("AAA", "BBB")) -> Path:
    """A Parquet file cut in half, as an interrupted copy leaves it."""
    data = _parquet(path, tickers).read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _corrupt_page(path: Path) -> Path:
    """A Parquet file whose footer is intact but whose first data page is zeroed."""
    data = bytearray(_parquet(path).read_bytes())
    data[4:200] = bytes(196)
    path.write_bytes(bytes(data))
    return path


def _write(path: Path, content: bytes) -> Path:
    path.write_bytes(content)
    return path


BROKEN = {
    "truncated parquet": (
        ParquetSource,
        lambda d: _truncated(d / "bars.parquet"),
        "File out of specification",
    ),
    "corrupt parquet page": (ParquetSource, lambda d: _corrupt_page(d / "bars.parquet"), "parquet"),
    "text named .parquet": (ParquetSource, lambda d: _write(d / "bars.parquet", b"ticker,date\n"), "PAR1"),
    "empty parquet": (ParquetSource, lambda d: _write(d / "bars.parquet", b""), "parquet"),
    "parquet without ticker": (
        ParquetSource,
        lambda d: (_bars().drop("ticker").write_parquet(d / "bars.parquet"), d / "bars.parquet")[1],
        "missing required column(s) 'ticker'",
    ),
    "csv not utf-8": (
        CsvSource,
        lambda d: _write(d / "bars.csv", b"ticker,date,close\nA,\xff\xfe,1\n"),
        "utf-8",
    ),
    "ragged csv": (
        CsvSource,
        lambda d: _write(d / "bars.csv", b"ticker,date,close\nA,2019-01-02,1,9,9\n"),
        "fields",
    ),
    "empty csv": (CsvSource, lambda d: _write(d / "bars.csv", b""), "empty CSV"),
    "csv without close": (
        CsvSource,
        lambda d: _write(d / "bars.csv", b"ticker,date,open\nA,2019-01-02,1\n"),
        "missing required column(s) 'close'",
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_every_read_error_names_the_file_and_the_reason(tmp_path, case):
    cls, make, reason = BROKEN[case]
    path = make(tmp_path)
    with pytest.raises(SourceFileError) as caught:
        cls(path).fetch(["AAA"], W0, W1)
    error = caught.value
    assert isinstance(error, SourceError)  # what the fallback chain catches
    assert error.path == str(path) and str(path) in str(error)
    assert reason in error.reason and "\n" not in str(error) and len(str(error)) < 400


def test_probe_truncated_parquet_before_a_good_csv_falls_back_and_names_the_parquet(tmp_path):
    broken = _truncated(tmp_path / "bars.parquet")
    good = tmp_path / "bars.csv"
    _bars().write_csv(good)
    chain = build_chain(["parquet", "csv"], SourceSettings(parquet_path=str(broken), csv_path=str(good)))
    result = chain.fetch(["AAA", "BBB"], W0, W1)
    assert result.served_by == {"AAA": "csv", "BBB": "csv"}
    assert result.bars.height == 20 and not result.failures
    error = result.source_errors["parquet"]
    assert f"cannot read {broken}" in error and "File out of specification" in error


def test_a_folder_with_one_bad_file_serves_the_others_and_reports_it(tmp_path):
    _parquet(tmp_path / "a" / "aaa.parquet", ("AAA",))
    bad = _truncated(tmp_path / "b" / "bbb.parquet", ("BBB",))
    _parquet(tmp_path / "c" / "ccc.parquet", ("CCC",))
    batch = ParquetSource(tmp_path).fetch(["AAA", "BBB", "CCC"], W0, W1)
    assert set(batch.bars["ticker"]) == {"AAA", "CCC"} and batch.bars.height == 20
    assert list(batch.unreadable_files) == [str(bad)]
    assert "File out of specification" in batch.unreadable_files[str(bad)]
    # The ticker only the bad file had says why it is missing, naming the file.
    assert "skipped 1 unreadable file(s)" in batch.missing["BBB"] and str(bad) in batch.missing["BBB"]
    assert set(batch.missing) == {"BBB"}


def test_a_folder_whose_files_are_all_unreadable_fails_naming_each_and_the_chain_moves_on(tmp_path):
    folder = tmp_path / "bars"
    first = _truncated(folder / "one.parquet")
    second = _write(folder / "two.parquet", b"not parquet")
    with pytest.raises(SourceFileError, match="none of its 2 \\*.parquet files can be read") as caught:
        ParquetSource(folder).fetch(["AAA"], W0, W1)
    assert str(first) in str(caught.value) and str(second) in str(caught.value)

    good = tmp_path / "good.csv"
    _bars().write_csv(good)
    result = FallbackChain([ParquetSource(folder), CsvSource(good)]).fetch(["AAA"], W0, W1)
    assert result.served_by == {"AAA": "csv"} and str(first) in result.source_errors["parquet"]


def test_listing_tickers_of_a_folder_with_an_unreadable_file_fails_naming_it(tmp_path):
    # A listing that skipped the file would drop its tickers from the universe (deactivated).
    _parquet(tmp_path / "aaa.parquet", ("AAA",))
    bad = _truncated(tmp_path / "bbb.parquet", ("BBB",))
    with pytest.raises(SourceFileError, match=f"cannot read {bad}: .*File out of specification"):
        ParquetSource(tmp_path).list_tickers()


def test_missing_path_and_empty_folder_stay_configuration_errors(tmp_path):
    with pytest.raises(SourceConfigError, match="does not exist") as caught:
        CsvSource(tmp_path / "nope.csv").fetch(["A"], W0, W1)
    assert not isinstance(caught.value, SourceFileError)
    with pytest.raises(SourceConfigError, match=r"no \*\.parquet files"):
        ParquetSource(tmp_path).fetch(["A"], W0, W1)
