"""Run config of ``market_data`` adds to the environment; file settings reach the sources
(issue 9, defect 7 and the file probes, through ``dg.materialize``).

The probe: with ``PM_SOURCES=parquet`` and ``PM_PARQUET_PATH`` set, run config naming only
``fallback_order`` (or only ``universe_path``) rebuilt the resource from that config alone: the
parquet path was lost, or the order fell back to ``bundled`` and bundled bars were served.
"""

import datetime as dt

import dagster as dg
import duckdb
import polars as pl
import pytest

from pm_assets.market import market_assets
from pm_resources import build_resources
from tests.conftest import clean_bars

START, END = "2019-01-02", "2019-01-15"


@pytest.fixture
def parquet_env(tmp_path, monkeypatch):
    """The environment of a deployment serving AAA and BBB from a real parquet file."""
    path = tmp_path / "bars.parquet"
    clean_bars(tickers=("AAA", "BBB"), n=10).drop("_unparseable", "source").write_parquet(path)
    monkeypatch.setenv("PM_SOURCES", "parquet")
    monkeypatch.setenv("PM_PARQUET_PATH", str(path))
    monkeypatch.delenv("PM_DATE_FORMAT", raising=False)
    return path


def _materialize(run_config: dict | None = None, *, raise_on_error: bool = True):
    from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

    return dg.materialize(
        market_assets,
        resources=build_resources(),
        run_config={"resources": {"market_data": {"config": run_config}}} if run_config else None,
        tags={ASSET_PARTITION_RANGE_START_TAG: START, ASSET_PARTITION_RANGE_END_TAG: END},
        raise_on_error=raise_on_error,
    )


def _stored() -> pl.DataFrame:
    database = build_resources()["warehouse"].database
    with duckdb.connect(database, read_only=True) as conn:
        return conn.sql("SELECT ticker, date, close, source FROM market.ohlcv ORDER BY ticker, date").pl()


@pytest.mark.parametrize(
    "run_config",
    [None, {"fallback_order": ["parquet"]}, {"max_attempts": 2}, {"fallback_order": ["parquet", "bundled"]}],
    ids=["no run config", "only fallback_order", "only an unrelated field", "order with a fallback"],
)
def test_run_config_naming_some_fields_keeps_the_environment_for_the_others(parquet_env, run_config):
    assert _materialize(run_config).success
    stored = _stored()
    assert set(stored["source"]) == {"parquet"} and set(stored["ticker"]) == {"AAA", "BBB"}
    assert stored.height == 20  # 10 sessions each, nothing bundled


def test_run_config_naming_only_the_universe_keeps_the_environment_order(parquet_env, tmp_path):
    universe = tmp_path / "universe.yaml"
    universe.write_text("tickers: [AAA]\n")
    assert _materialize({"universe_path": str(universe)}).success
    stored = _stored()
    assert set(stored["ticker"]) == {"AAA"} and set(stored["source"]) == {"parquet"}


def test_a_field_named_in_run_config_wins_over_the_environment(parquet_env, tmp_path):
    other = tmp_path / "other.parquet"
    clean_bars(tickers=("CCC",), n=10).drop("_unparseable", "source").write_parquet(other)
    assert _materialize({"parquet_path": str(other)}).success
    assert set(_stored()["ticker"]) == {"CCC"}


def test_pm_date_format_reaches_the_csv_source(tmp_path, monkeypatch):
    bars = clean_bars(tickers=("AAA",), n=10).drop("_unparseable", "source")
    path = tmp_path / "us.csv"
    bars.with_columns(pl.col("date").dt.strftime("%m/%d/%Y")).write_csv(path)
    monkeypatch.setenv("PM_SOURCES", "csv")
    monkeypatch.setenv("PM_CSV_PATH", str(path))
    monkeypatch.setenv("PM_DATE_FORMAT", "%m/%d/%Y")
    assert _materialize().success
    assert _stored()["date"].to_list() == bars["date"].to_list()


def test_probe_truncated_parquet_before_a_good_csv_serves_the_csv(tmp_path, monkeypatch):
    bars = clean_bars(tickers=("AAA", "BBB"), n=10).drop("_unparseable", "source")
    broken = tmp_path / "bars.parquet"
    bars.write_parquet(broken)
    broken.write_bytes(broken.read_bytes()[:200])
    good = tmp_path / "bars.csv"
    bars.write_csv(good)
    universe = tmp_path / "universe.yaml"  # the truncated file cannot list tickers either
    universe.write_text("tickers: [AAA, BBB]\n")
    for key, value in {
        "PM_SOURCES": "parquet,csv",
        "PM_PARQUET_PATH": str(broken),
        "PM_CSV_PATH": str(good),
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("PM_UNIVERSE", str(universe))
    result = _materialize()
    assert result.success
    stored = _stored()
    assert set(stored["source"]) == {"csv"} and stored.height == 20
    assert stored["date"].min() == dt.date(2019, 1, 2)


def test_a_folder_with_one_unreadable_file_serves_the_rest_and_the_metadata_names_the_file(
    tmp_path, monkeypatch
):
    folder = tmp_path / "bars"
    folder.mkdir()
    bars = clean_bars(tickers=("AAA", "BBB"), n=10).drop("_unparseable", "source")
    bars.filter(pl.col("ticker") == "AAA").write_parquet(folder / "aaa.parquet")
    bars.filter(pl.col("ticker") == "BBB").write_parquet(folder / "bbb.parquet")
    broken = folder / "bbb.parquet"
    broken.write_bytes(broken.read_bytes()[:150])
    universe = tmp_path / "universe.yaml"
    universe.write_text("tickers: [AAA, BBB]\n")
    monkeypatch.setenv("PM_SOURCES", "parquet")
    monkeypatch.setenv("PM_PARQUET_PATH", str(folder))
    monkeypatch.setenv("PM_UNIVERSE", str(universe))
    result = _materialize()
    assert result.success
    assert set(_stored()["ticker"]) == {"AAA"}
    meta = result.asset_materializations_for_node("market__ohlcv")[0].metadata
    assert meta["files_unreadable"].value == 1.0
    [(path, reason)] = meta["unreadable_files"].value["parquet"].items()
    assert path.endswith("bbb.parquet") and reason
    assert "**BBB**" in meta["failed_tickers"].value and "bbb.parquet" in meta["failed_tickers"].value
