"""The interface every OHLCV source implements, and the errors they raise.

A source answers ``fetch(tickers, start, end)`` with bars in the canonical schema
(:mod:`model_code.market_data.schema`) for the tickers it has, and says for every other ticker
why it has none. It never invents a bar and never drops one it received: malformed values are
passed on as NULL with a flag so the validator can quarantine the row with a reason.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import polars as pl

from model_code.market_data.schema import empty_ohlcv


class SourceError(Exception):
    """Base class of source failures. Messages never contain API keys."""


class SourceConfigError(SourceError):
    """The source is misconfigured (missing key, bad path): retrying will not help."""


class SourceFileError(SourceConfigError):
    """A file of a file source cannot be read (truncated or corrupt Parquet, text that is not
    CSV, a required column missing). The message names the file and the reader's reason;
    re-reading the same file will not help, so the fallback chain moves on to the next source.

    Attributes:
        path: the file, as the source was given it.
        reason: why it cannot be read, one line (cut by :func:`~model_code.market_data.echo.clip`).
    """

    def __init__(self, source: str, path: str, reason: str) -> None:
        super().__init__(f"{source} source: cannot read {path}: {reason}")
        self.path, self.reason = path, reason


class SourceUnavailable(SourceError):
    """The source did not answer usably (timeouts, 5xx, rate limits) after all retries."""


class TickerNotFound(SourceError):
    """The source answered, and it has no such ticker."""


@dataclass
class SourceBatch:
    """What one source returned for a request.

    Attributes:
        bars: canonical OHLCV rows (plus the ``_unparseable`` flag column).
        missing: ticker → why this source has no bars for it (not found, unavailable, no data
            in the window). A ticker is either in ``bars`` or in ``missing``.
        unreadable_files: file path → why it could not be read, for a file source that served
            its other files and skipped these (empty for every other source).
        unavailable: the tickers of ``missing`` whose request failed because the source did not
            answer usably (:class:`SourceUnavailable`: timeouts, refused connections, 5xx,
            throttling), as opposed to answering that it has no such ticker or no bars.
    """

    bars: pl.DataFrame = field(default_factory=empty_ohlcv)
    missing: dict[str, str] = field(default_factory=dict)
    unreadable_files: dict[str, str] = field(default_factory=dict)
    unavailable: set[str] = field(default_factory=set)


@runtime_checkable
class OhlcvSource(Protocol):
    """A provider of daily bars."""

    name: str

    def fetch(self, tickers: Sequence[str], start: dt.date, end: dt.date) -> SourceBatch:
        """Bars with ``start <= date <= end`` for ``tickers``; never raises for one bad ticker."""
        ...

    def list_tickers(self) -> list[str] | None:
        """Every ticker the source can serve, or ``None`` when it cannot enumerate them."""
        ...


def window_filter(tickers: Sequence[str], start: dt.date, end: dt.date) -> pl.Expr:
    """Rows for the requested tickers and dates, plus rows whose key could not be read.

    Rows with a NULL ticker or date are kept so that the validator quarantines them instead of
    letting them vanish silently.
    """
    ticker_ok = pl.col("ticker").is_in(list(tickers)) | pl.col("ticker").is_null()
    date_ok = pl.col("date").is_between(start, end) | pl.col("date").is_null()
    return ticker_ok & date_ok


def missing_tickers(bars: pl.DataFrame, tickers: Sequence[str], reason: str) -> dict[str, str]:
    """Requested tickers that have no row in ``bars``, each with ``reason``."""
    present = set(bars.get_column("ticker").drop_nulls().unique().to_list()) if bars.height else set()
    return {t: reason for t in tickers if t not in present}
