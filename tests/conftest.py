"""Shared fixtures: an isolated $PM_HOME per test, small OHLCV frames, the shared data set."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest

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
        "PM_ALPHAVANTAGE_KEY",
        "PM_FINNHUB_KEY",
    ):
        monkeypatch.delenv(key, raising=False)
    return home


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
    """One ticker's daily log returns from the shared file, cleaned as the benchmarks clean it:
    repeated (ticker, date) keys dropped (all copies), prices coalesce(adj_close, close) < $0.05
    dropped, oldest first; only dates up to ``through_year`` when given."""
    px = pl.coalesce("adj_close", "close")
    frame = pl.scan_parquet(path).filter(pl.col("ticker") == ticker)
    if through_year is not None:
        frame = frame.filter(pl.col("date").dt.year() <= through_year)
    prices = (
        frame.filter(~pl.struct("ticker", "date").is_duplicated() & (px >= 0.05))
        .sort("date")
        .select(px)
        .collect()
        .to_series()
        .to_numpy()
    )
    return np.diff(np.log(prices))


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
