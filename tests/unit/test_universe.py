from pathlib import Path

import pytest

from model_code.market_data.universe import UniverseError, load_universe, parse_universe

ROOT = Path(__file__).resolve().parents[2]


def test_example_universe_file_loads():
    universe = load_universe(ROOT / "config" / "universe.example.yaml")
    assert universe.tickers == ["AAPL", "MSFT", "^GSPC"]
    assert universe.pinned_source("MSFT") == "bundled" and universe.pinned_source("AAPL") is None


def test_include_sources_expands_and_explicit_entries_win(tmp_path):
    path = tmp_path / "u.yaml"
    path.write_text("tickers: [{ticker: AAA, source: csv}]\ninclude_sources: [bundled]\n")
    universe = load_universe(path, list_source=lambda name: ["AAA", "BBB"])
    assert universe.tickers == ["AAA", "BBB"]
    assert universe.pinned_source("AAA") == "csv" and universe.pinned_source("BBB") == "bundled"


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([{"ticker": "AAPL"}, "aapl"], "listed twice"),
        (["bad ticker!"], "invalid ticker"),
        ([{"source": "bundled"}], "entry 0 must be a ticker"),
    ],
)
def test_malformed_universe_entries_are_named(entries, message):
    with pytest.raises(UniverseError, match=message):
        parse_universe(entries)


def test_universe_file_errors(tmp_path):
    with pytest.raises(UniverseError, match="does not exist"):
        load_universe(tmp_path / "nope.yaml")
    empty = tmp_path / "empty.yaml"
    empty.write_text("tickers: []\n")
    with pytest.raises(UniverseError, match="lists no tickers"):
        load_universe(empty)
    broken = tmp_path / "broken.yaml"
    broken.write_text("tickers: [\n")
    with pytest.raises(UniverseError, match="not valid YAML"):
        load_universe(broken)
    unlisted = tmp_path / "unlisted.yaml"
    unlisted.write_text("include_sources: [finnhub]\n")
    with pytest.raises(UniverseError, match="source 'finnhub' cannot list its tickers"):
        load_universe(unlisted, list_source=lambda name: None)
