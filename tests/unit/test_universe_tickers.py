"""Tickers are read as written and never folded beyond ASCII; errors name the file and cut
what they echo (issue 9, defect 7).

The probes: YAML turned ``ON``/``NO`` into booleans (stored as ``TRUE``/``FALSE``),
``"ıbm".upper()`` made ``IBM``, and an invalid ticker in a data file failed ``market/universe``
without naming the file while echoing a 10,000-character ticker in full.
"""

import re

import polars as pl
import pytest

from model_code.market_data.echo import clip, echo, echo_expr
from model_code.market_data.sources.files import CsvSource, ParquetSource
from model_code.market_data.universe import UniverseError, canonical_ticker, load_universe, parse_universe
from pm_resources import MarketDataResource
from tests.conftest import clean_bars

LONG = "X" * 10_000


def _yaml(tmp_path, text: str):
    path = tmp_path / "universe.yaml"
    path.write_text(text)
    return path


def test_yaml_tickers_that_look_like_booleans_or_numbers_stay_the_text_written(tmp_path):
    path = _yaml(
        tmp_path,
        "tickers:\n"
        "  - ON\n  - NO\n  - yes\n  - 'TRUE'\n  - Off\n  - 1e3\n  - 0700\n  - 1.5E3\n"
        "  - {ticker: Y}\n  - {ticker: n, source: bundled}\n  - {ticker: 2019-01-02}\n  - null\n",
    )
    universe = load_universe(path)
    assert universe.tickers == [
        *("ON", "NO", "YES", "TRUE", "OFF", "1E3", "0700", "1.5E3", "Y", "N", "2019-01-02", "NULL")
    ]
    assert universe.pinned_source("N") == "bundled"


@pytest.mark.parametrize("text", ["  - ~\n", "  - \n", "  - {ticker: }\n", "  - ''\n"])
def test_yaml_empty_values_are_not_tickers(tmp_path, text):
    with pytest.raises(UniverseError, match="entry 0: invalid ticker"):
        load_universe(_yaml(tmp_path, "tickers:\n" + text))


@pytest.mark.parametrize(
    ("raw", "char"),
    [
        ("ıbm", "U+0131"),
        ("İBM", "U+0130"),
        ("ＡAPL", "U+FF21"),
        ("AAPL\u00a0", "U+00A0"),
        ("straße", "U+00DF"),
    ],
)
def test_non_ascii_letters_are_refused_not_folded(raw, char):
    with pytest.raises(UniverseError, match=re.escape(f"({char}); tickers are ASCII")):
        parse_universe([raw])


def test_ascii_letters_are_upper_cased_and_surrounding_blanks_dropped():
    assert parse_universe(["aapl", " brk.b\t", "^gspc"]).tickers == ["AAPL", "BRK.B", "^GSPC"]


@pytest.mark.parametrize("raw", [True, 1000, 1.5, None])
def test_a_ticker_that_is_not_text_is_refused_with_a_hint(raw):
    with pytest.raises(UniverseError, match=f"ticker {raw!r} is a {type(raw).__name__}, not text"):
        parse_universe([{"ticker": raw}])


def test_a_pin_must_name_a_source():
    with pytest.raises(UniverseError, match="pinned to 'Bundled', which is not a source name"):
        parse_universe([{"ticker": "AAPL", "source": "Bundled"}])


def test_a_huge_ticker_in_yaml_is_echoed_cut_short(tmp_path):
    with pytest.raises(UniverseError) as caught:
        load_universe(_yaml(tmp_path, f"tickers: [{LONG}]\n"))
    message = str(caught.value)
    assert f"'{'X' * 40}'…(10000 chars)" in message and len(message) < 300
    assert str(tmp_path / "universe.yaml") in message


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_an_invalid_ticker_in_a_data_file_names_the_file_and_is_cut_short(tmp_path, fmt):
    bars = clean_bars(tickers=("AAA",), n=3).drop("_unparseable", "source")
    bars = pl.concat([bars, bars.head(1).with_columns(ticker=pl.lit(LONG))])
    path = tmp_path / f"bars.{fmt}"
    bars.write_parquet(path) if fmt == "parquet" else bars.write_csv(path)
    source = ParquetSource(path) if fmt == "parquet" else CsvSource(path)
    with pytest.raises(UniverseError) as caught:
        source.list_tickers()
    message = str(caught.value)
    assert f"{fmt} file {path}" in message and "…(10000 chars)" in message and len(message) < 300

    # Through the resource, as market/universe lists a source by default or by include_sources.
    with pytest.raises(UniverseError, match=f"{fmt} file {path}"):
        MarketDataResource(fallback_order=[fmt], **{f"{fmt}_path": str(path)}).universe()
    listed = _yaml(tmp_path, f"include_sources: [{fmt}]\n")
    with pytest.raises(UniverseError, match=f"{fmt} file {path}"):
        MarketDataResource(universe_path=str(listed), **{f"{fmt}_path": str(path)}).universe()


def test_a_data_file_ticker_not_written_as_stored_is_refused(tmp_path):
    # Bars are matched by exact ticker: 'aapl' listed as AAPL would never find its rows.
    path = tmp_path / "bars.csv"
    clean_bars(tickers=("aapl",), n=3).drop("_unparseable", "source").write_csv(path)
    with pytest.raises(
        UniverseError, match=rf"csv file {path}: ticker 'aapl' is not written as stored \('AAPL'\)"
    ):
        CsvSource(path).list_tickers()


def test_echo_clip_and_the_polars_echo_cut_the_same_way():
    assert clip("abc") == "abc" and clip(LONG) == "X" * 40 + "…(10000 chars)"
    assert echo("AAPL") == "'AAPL'" and echo(LONG) == f"'{'X' * 40}'…(10000 chars)"
    assert echo(True) == "True" and echo(list(range(100)), limit=10) == "[0, 1, 2, …(390 chars)"
    frame = pl.DataFrame({"s": ["AAPL", LONG, None]})
    assert frame.select(e=echo_expr(pl.col("s")))["e"].to_list() == [echo("AAPL"), echo(LONG), None]


def test_canonical_ticker_names_where_it_was_found():
    with pytest.raises(UniverseError, match="^somewhere: invalid ticker 'A B'"):
        canonical_ticker("A B", where="somewhere")
