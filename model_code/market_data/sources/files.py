"""Local Parquet or CSV files in the shared column layout.

Layout: ``ticker, date, open, high, low, close, adj_close, volume`` (case-insensitive; ``Adj
Close`` and ``symbol`` are accepted). ``path`` is one file or a folder searched recursively
for ``*.parquet`` / ``*.csv``. Parquet is scanned lazily so only the requested tickers are
read. Text dates are ISO 8601 unless ``date_format`` names another format
(:func:`~model_code.market_data.schema.conform_ohlcv`).

A file that cannot be read (truncated or corrupt Parquet, bytes that are not CSV, a required
column missing) raises :class:`SourceFileError` naming the file and the reader's reason, so the
fallback chain moves on. In a folder, :meth:`fetch` serves the readable files and reports the
others in :attr:`SourceBatch.unreadable_files` (and in the reason of every ticker it lacks);
only when no file can be read does it raise. :meth:`list_tickers` reads every file or fails:
a universe listed from a partly readable folder would silently deactivate the unread tickers.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

import polars as pl

from model_code.market_data.echo import clip, echo
from model_code.market_data.schema import OhlcvSchemaError, check_date_format, conform_ohlcv
from model_code.market_data.sources.base import (
    SourceBatch,
    SourceConfigError,
    SourceFileError,
    missing_tickers,
    window_filter,
)
from model_code.market_data.universe import UniverseError, canonical_ticker

# What polars and the OS raise on a file they cannot read. polars panics (a BaseException) on
# a few corrupt Parquet pages rather than raising an error.
_READ_ERRORS = (pl.exceptions.PolarsError, pl.exceptions.PanicException, OSError, OhlcvSchemaError)
_REASON_CHARS = 200  # characters of a reader's error kept in a message
_FILES_NAMED = 3  # unreadable files named in one message; the rest are counted


class _FileSource:
    """Shared logic of the Parquet and CSV sources; subclasses say how to read one file."""

    name: str
    suffix: str

    def __init__(self, path: str | Path, *, date_format: str | None = None) -> None:
        """``path``: a file or a folder; ``date_format``: format of text dates (``None``: ISO 8601).

        Raises:
            SourceConfigError: ``date_format`` cannot read back the dates it writes.
        """
        self.path = Path(path).expanduser()
        try:
            self.date_format = check_date_format(date_format) if date_format else None
        except OhlcvSchemaError as exc:
            raise SourceConfigError(f"{self.name} source: {exc}") from exc

    def _files(self) -> list[Path]:
        if self.path.is_file():
            return [self.path]
        if self.path.is_dir():
            files = sorted(self.path.rglob(f"*{self.suffix}"))
            if files:
                return files
            raise SourceConfigError(f"{self.name} source: no *{self.suffix} files under {self.path}")
        raise SourceConfigError(f"{self.name} source: path {self.path} does not exist")

    def _read(self, file: Path, tickers: Sequence[str] | None) -> pl.DataFrame:
        """The file's raw rows (for ``tickers`` and NULL tickers, or all when ``None``)."""
        raise NotImplementedError

    def _conformed(self, file: Path, tickers: Sequence[str] | None = None) -> pl.DataFrame:
        """The file's rows in the canonical schema; :class:`SourceFileError` if it cannot be read."""
        try:
            raw = self._read(file, tickers)
            return conform_ohlcv(raw, source=self.name, origin=str(file), date_format=self.date_format)
        except _READ_ERRORS as exc:
            raise SourceFileError(self.name, str(file), _reason(exc, file)) from exc

    def list_tickers(self) -> list[str]:
        """Every ticker in every file, sorted.

        Raises:
            SourceFileError: a file cannot be read (the listing would otherwise be partial).
            UniverseError: a file holds a ticker that is not a valid, upper-case ASCII ticker;
                the message names the file and quotes the ticker cut short.
        """
        tickers: set[str] = set()
        for file in self._files():
            listed = self._conformed(file).get_column("ticker").drop_nulls().unique().sort().to_list()
            where = f"{self.name} file {file}"
            for ticker in listed:
                if canonical_ticker(ticker, where=where) != ticker:
                    raise UniverseError(
                        f"{where}: ticker {echo(ticker)} is not written as stored "
                        f"({canonical_ticker(ticker, where=where)!r}); bars are matched by exact ticker"
                    )
            tickers.update(listed)
        return sorted(tickers)

    def fetch(self, tickers: Sequence[str], start: dt.date, end: dt.date) -> SourceBatch:
        """Bars for ``tickers`` in ``start..end`` from every readable file (see the module docstring)."""
        files = self._files()
        frames: list[pl.DataFrame] = []
        unreadable: dict[str, str] = {}
        for file in files:
            try:
                frames.append(self._conformed(file, tickers).filter(window_filter(tickers, start, end)))
            except SourceFileError as exc:
                if len(files) == 1:
                    raise
                unreadable[exc.path] = exc.reason
        if not frames:
            raise SourceFileError(
                self.name,
                str(self.path),
                f"none of its {len(files)} *{self.suffix} files can be read: " + _listing(unreadable),
            )
        bars = pl.concat(frames, how="vertical_relaxed")
        reason = f"no bars between {start} and {end} in {self.name} file(s) at {self.path}"
        if unreadable:
            reason += f"; skipped {len(unreadable)} unreadable file(s): {_listing(unreadable)}"
        return SourceBatch(
            bars=bars, missing=missing_tickers(bars, tickers, reason), unreadable_files=unreadable
        )


def _reason(exc: BaseException, file: Path) -> str:
    """One line saying why ``file`` could not be read, without repeating its path."""
    lines = str(exc).strip().splitlines()
    text = lines[0].removeprefix(f"{file}: ") if lines else ""
    return clip(text or type(exc).__name__, _REASON_CHARS)


def _listing(unreadable: dict[str, str]) -> str:
    named = [f"{path} ({why})" for path, why in list(unreadable.items())[:_FILES_NAMED]]
    more = len(unreadable) - len(named)
    return "; ".join(named) + (f"; and {more} more" if more > 0 else "")


class ParquetSource(_FileSource):
    """Bars from a Parquet file or folder."""

    name = "parquet"
    suffix = ".parquet"

    def _read(self, file: Path, tickers: Sequence[str] | None) -> pl.DataFrame:
        lazy = pl.scan_parquet(file)
        if tickers is None:
            return lazy.collect()
        names = {c.lower(): c for c in lazy.collect_schema().names()}
        ticker_col = names.get("ticker") or names.get("symbol")
        if ticker_col is None:
            raise OhlcvSchemaError(f"missing required column(s) 'ticker'; found {echo(sorted(names), 200)}")
        # Push the ticker filter into the scan; dates are filtered after conforming so a
        # string or timestamp date column is handled the same way.
        return lazy.filter(pl.col(ticker_col).is_in(list(tickers)) | pl.col(ticker_col).is_null()).collect()


class CsvSource(_FileSource):
    """Bars from a CSV file or folder (comma-separated, header row)."""

    name = "csv"
    suffix = ".csv"

    def _read(self, file: Path, tickers: Sequence[str] | None) -> pl.DataFrame:
        # Read every column as text: the conformer casts and flags values that do not parse,
        # so one bad cell quarantines one row instead of failing or nulling a whole column.
        return pl.read_csv(file, infer_schema=False)
