"""Local Parquet or CSV files in the shared column layout.

Layout: ``ticker, date, open, high, low, close, adj_close, volume`` (case-insensitive; ``Adj
Close`` and ``symbol`` are accepted). ``path`` is one file or a folder searched recursively
for ``*.parquet`` / ``*.csv``. Parquet is scanned lazily so only the requested tickers and
dates are read.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

import polars as pl

from model_code.market_data.schema import OhlcvSchemaError, conform_ohlcv
from model_code.market_data.sources.base import (
    SourceBatch,
    SourceConfigError,
    missing_tickers,
    window_filter,
)


class _FileSource:
    """Shared logic of the Parquet and CSV sources; subclasses say how to read one file."""

    name: str
    suffix: str

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()

    def _files(self) -> list[Path]:
        if self.path.is_file():
            return [self.path]
        if self.path.is_dir():
            files = sorted(self.path.rglob(f"*{self.suffix}"))
            if files:
                return files
            raise SourceConfigError(f"{self.name} source: no *{self.suffix} files under {self.path}")
        raise SourceConfigError(f"{self.name} source: path {self.path} does not exist")

    def _read(self, file: Path) -> pl.DataFrame:
        raise NotImplementedError

    def _conformed(self, file: Path) -> pl.DataFrame:
        try:
            raw = self._read(file)
        except (pl.exceptions.ComputeError, OSError) as exc:
            raise SourceConfigError(f"{self.name} source: cannot read {file}: {exc}") from exc
        return conform_ohlcv(raw, source=self.name, origin=str(file))

    def list_tickers(self) -> list[str]:
        tickers: set[str] = set()
        for file in self._files():
            tickers |= set(self._conformed(file).get_column("ticker").drop_nulls().unique())
        return sorted(tickers)

    def _window(self, file: Path, tickers: Sequence[str], start: dt.date, end: dt.date) -> pl.DataFrame:
        return self._conformed(file).filter(window_filter(tickers, start, end))

    def fetch(self, tickers: Sequence[str], start: dt.date, end: dt.date) -> SourceBatch:
        frames = [self._window(f, tickers, start, end) for f in self._files()]
        bars = pl.concat(frames, how="vertical_relaxed")
        reason = f"no bars between {start} and {end} in {self.name} file(s) at {self.path}"
        return SourceBatch(bars=bars, missing=missing_tickers(bars, tickers, reason))


class ParquetSource(_FileSource):
    """Bars from a Parquet file or folder."""

    name = "parquet"
    suffix = ".parquet"

    def _read(self, file: Path) -> pl.DataFrame:
        return pl.read_parquet(file)

    def _window(self, file: Path, tickers: Sequence[str], start: dt.date, end: dt.date) -> pl.DataFrame:
        lazy = pl.scan_parquet(file)
        names = {c.lower(): c for c in lazy.collect_schema().names()}
        ticker_col = names.get("ticker") or names.get("symbol")
        if ticker_col is None:
            raise OhlcvSchemaError(f"{file}: missing required column 'ticker'")
        # Push the ticker filter into the scan; dates are filtered after conforming so a
        # string or timestamp date column is handled the same way.
        lazy = lazy.filter(pl.col(ticker_col).is_in(list(tickers)) | pl.col(ticker_col).is_null())
        try:
            raw = lazy.collect()
        except (pl.exceptions.ComputeError, OSError) as exc:
            raise SourceConfigError(f"parquet source: cannot read {file}: {exc}") from exc
        conformed = conform_ohlcv(raw, source=self.name, origin=str(file))
        return conformed.filter(window_filter(tickers, start, end))


class CsvSource(_FileSource):
    """Bars from a CSV file or folder (comma-separated, header row)."""

    name = "csv"
    suffix = ".csv"

    def _read(self, file: Path) -> pl.DataFrame:
        # Read every column as text: the conformer casts and flags values that do not parse,
        # so one bad cell quarantines one row instead of failing or nulling a whole column.
        return pl.read_csv(file, infer_schema=False)
