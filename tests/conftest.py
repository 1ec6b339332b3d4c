"""Shared fixtures: an isolated $PM_HOME per test, small OHLCV frames, the shared data set."""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path

# The partitions cover the configured history, read once at import (pm_assets.partitions). The
# tests' history spans the shared data set (2015-2019) and the recorded web-source responses
# (January 2024), so it is set before anything imports the definitions; servers and CLIs the
# tests start inherit it. tests/unit/test_history.py checks the shipped defaults.
os.environ.setdefault("PM_HISTORY_START", "2015-01-02")
os.environ.setdefault("PM_HISTORY_END", "2024-12-31")

import duckdb
import numpy as np
import polars as pl
import pytest

from model_code.evaluation.clean_bars import load_clean_bars
from model_code.forecasting.returns import daily_log_returns
from model_code.market_data.calendar import trading_calendar
from model_code.market_data.schema import conform_ohlcv
from model_code.warehouse import Warehouse, apply_ddl

SHARED_PARQUET = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "us_equities_daily_2015_2019.parquet"
)


@pytest.fixture(autouse=True)
def isolated_pm_home(tmp_path, monkeypatch):
    """Every test gets its own $PM_HOME so nothing touches the user's warehouse or cache."""
    home = tmp_path / "pm_home"
    monkeypatch.setenv("PM_HOME", str(home))
    monkeypatch.delenv("PM_DUCKDB_PATH", raising=False)
    for key in (
        "PM_SOURCES",
        "PM_UNIVERSE",
        "PM_PARQUET_PATH",
        "PM_CSV_PATH",
        "PM_DATE_FORMAT",
        "PM_DUCKDB_LOCK_TIMEOUT",
        "PM_POOL_WAIT_SECONDS",
        "OLLAMA_HOST",
        "PM_OLLAMA_TOKEN",
        "PM_ALPHAVANTAGE_KEY",
        "PM_FINNHUB_KEY",
    ):
        monkeypatch.delenv(key, raising=False)
    return home


def shipped_dagster_home(folder: Path) -> Path:
    """``folder`` as a DAGSTER_HOME holding the repository's own ``dagster.yaml`` (pools, run
    monitoring, queued coordinator), as ``make dev`` sets one up."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(Path(__file__).resolve().parents[1] / "config" / "dagster.yaml", folder / "dagster.yaml")
    return folder


@pytest.fixture
def warehouse(tmp_path):
    """A :class:`Warehouse` on a temporary DuckDB file with the DDL applied."""
    conn = duckdb.connect(str(tmp_path / "test.duckdb"))
    apply_ddl(conn)
    yield Warehouse(conn)
    conn.close()


@pytest.fixture(scope="session")
def shared_parquet() -> Path:
    if not SHARED_PARQUET.is_file():
        pytest.skip(f"shared data set not found at {SHARED_PARQUET}")
    return SHARED_PARQUET


def shared_log_returns(path: Path, ticker: str, through_year: int | None = None) -> np.ndarray:
    """One ticker's daily log returns, oldest first, from the accepted bars of the shared file
    (:func:`~model_code.evaluation.clean_bars.load_clean_bars`, as the reports and benchmarks read
    it); only bars dated up to the end of ``through_year`` when given."""
    end = dt.date(through_year, 12, 31) if through_year is not None else None
    bars = load_clean_bars(path, tickers=[ticker], end=end).bars
    return daily_log_returns(bars, bars["date"].max())["r"].to_numpy()


def clean_bars(tickers=("AAA", "BBB"), start=dt.date(2019, 1, 2), n=30, source="test") -> pl.DataFrame:
    """Plausible, fault-free daily bars on consecutive NYSE sessions (a deterministic random walk)."""
    sessions = trading_calendar().sessions_in_range(start, start + dt.timedelta(days=3 * n))[:n]
    rows = []
    for k, ticker in enumerate(tickers):
        price = 50.0 + 10 * k
        for i, day in enumerate(sessions):
            step = 1.0 + 0.01 * (((i * 7 + k * 3) % 5) - 2)
            open_ = price
            close = price * step
            rows.append(
                {
                    "ticker": ticker,
                    "date": dt.date.fromisoformat(str(day)),
                    "open": open_,
                    "high": max(open_, close) * 1.005,
                    "low": min(open_, close) * 0.995,
                    "close": close,
                    "adj_close": close,
                    "volume": 1_000_000.0 + 1000 * i,
                }
            )
            price = close
    return conform_ohlcv(pl.DataFrame(rows), source=source, origin="test")
