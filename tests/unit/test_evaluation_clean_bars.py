"""``load_clean_bars``: a bar file's accepted rows, as the validator sees them, on a small faulty file."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from model_code.evaluation.clean_bars import REPO_ROOT, load_clean_bars, repo_relative
from model_code.market_data.sources import SourceConfigError
from tests.conftest import clean_bars

KEYS = ["ticker", "date"]
SPIKE_ROW = 10  # AAA's 11th session: its close doubles and reverts on the next bar


def _faulty_file(tmp_path: Path, fmt: str) -> tuple[Path, pl.DataFrame]:
    """Clean bars of AAA, BBB and CCC with one fault of each kind a research run must not see."""
    good = clean_bars(tickers=("AAA", "BBB", "CCC"), n=20).drop("_unparseable", "source")
    rows = good.to_dicts()
    aaa = [r for r in rows if r["ticker"] == "AAA"]
    spike = aaa[SPIKE_ROW]
    spike.update(close=spike["close"] * 2, adj_close=spike["adj_close"] * 2, high=spike["close"] * 2.01)
    bbb0 = next(r for r in rows if r["ticker"] == "BBB")
    conflicting = dict(bbb0, low=bbb0["low"] * 0.99)  # same key, other prices: both copies out
    exact_repeat = dict(aaa[0])  # same key, same prices: one copy kept
    null_key = dict(aaa[1], ticker=None)
    for r in rows:
        if r["ticker"] == "CCC":  # every CCC bar is a vendor placeholder quote
            r.update(open=0.001, high=0.001, low=0.001, close=0.001, adj_close=0.001)
    frame = pl.DataFrame([*rows, conflicting, exact_repeat, null_key], schema=good.schema)
    path = tmp_path / f"bars.{fmt}"
    frame.write_parquet(path) if fmt == "parquet" else frame.write_csv(path)
    return path, good


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_only_accepted_bars_come_back_with_the_counts_of_what_was_rejected(tmp_path, fmt):
    path, good = _faulty_file(tmp_path, fmt)
    clean = load_clean_bars(path)
    bars = clean.bars
    assert bars.columns == ["ticker", "date", "open", "high", "low", "close", "adj_close", "volume", "source"]
    assert bars["source"].unique().to_list() == [fmt]
    assert bars.select(KEYS).equals(bars.select(KEYS).unique(maintain_order=True).sort(KEYS))
    assert clean.raw_rows == 3 * 20 + 3 and clean.raw_tickers == 3
    assert clean.quarantined == {
        "missing_key": 1,
        "conflicting_duplicate": 2,
        "duplicate_key": 1,
        "price_below_minimum": 20,
        "price_spike": 1,
    }
    assert clean.dropped_tickers == ["CCC"]
    spike_date = good.filter(pl.col("ticker") == "AAA")["date"][SPIKE_ROW]
    bbb_first = good.filter(pl.col("ticker") == "BBB")["date"][0]
    expected = good.filter(
        (pl.col("ticker") == "AAA") & (pl.col("date") != spike_date)
        | (pl.col("ticker") == "BBB") & (pl.col("date") != bbb_first)
    )
    assert bars.select(KEYS).equals(expected.select(KEYS))
    assert bars.drop("source").equals(expected)


def test_a_window_and_a_ticker_subset_cut_the_whole_file_verdicts(tmp_path):
    path, good = _faulty_file(tmp_path, "parquet")
    whole = load_clean_bars(path).bars
    spike_date = good.filter(pl.col("ticker") == "AAA")["date"][SPIKE_ROW]
    start = good["date"].min() + dt.timedelta(days=3)
    # The window ends on the spike: validated first, the spike is still seen (its reversal is
    # outside the window) and stays out.
    cut = load_clean_bars(path, start=start, end=spike_date, tickers=["AAA"])
    want = whole.filter((pl.col("ticker") == "AAA") & pl.col("date").is_between(start, spike_date))
    assert cut.bars.equals(want) and spike_date not in cut.bars["date"].to_list()
    # AAA's faults, and the NULL-ticker row: a source never lets an unreadable key vanish.
    assert cut.quarantined == {"price_spike": 1, "duplicate_key": 1, "missing_key": 1}
    assert cut.raw_tickers == 1 and cut.dropped_tickers == []


def test_a_missing_ticker_or_file_is_an_error(tmp_path):
    path, _ = _faulty_file(tmp_path, "parquet")
    with pytest.raises(LookupError, match="no bars for ZZZ"):
        load_clean_bars(path, tickers=["AAA", "ZZZ"])
    with pytest.raises(SourceConfigError, match="does not exist"):
        load_clean_bars(tmp_path / "nope.parquet")


def test_reports_name_files_relative_to_the_repository(monkeypatch):
    shared = REPO_ROOT.parent / "shared" / "data" / "us_equities_daily_2015_2019.parquet"
    assert repo_relative(shared) == "../shared/data/us_equities_daily_2015_2019.parquet"
    assert repo_relative(str(REPO_ROOT / "docs" / "results" / "x.md")) == "docs/results/x.md"
    monkeypatch.chdir(REPO_ROOT / "docs")
    assert repo_relative("results/x.md") == "docs/results/x.md"
