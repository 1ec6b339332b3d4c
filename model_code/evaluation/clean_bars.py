"""Accepted daily bars of a bar file: the one way reports, benchmarks and tests read research data.

A Parquet or CSV file (or a folder of Parquet files) in the shared column layout is read by the
product's own file sources (:mod:`model_code.market_data.sources.files`, which conform it to the
canonical OHLCV schema) and split by the product's validator
(:func:`~model_code.validation.validate_ohlcv`); only the accepted rows are returned, so research
runs see exactly the bars ``market.ohlcv`` would hold. Prices are in the listing currency (USD
for the shared data), ``close`` raw and ``adj_close`` split/dividend-adjusted, as in the schema.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from model_code.market_data.sources.files import CsvSource, ParquetSource
from model_code.validation import ValidationRules, validate_ohlcv

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class CleanBars:
    """What :func:`load_clean_bars` read, kept and rejected.

    Attributes:
        bars: accepted rows in the canonical OHLCV schema, one per (ticker, date), sorted by
            ticker then date, cut to the requested dates.
        raw_rows: rows read for the requested tickers (every date, before validation).
        raw_tickers: distinct non-NULL tickers among them.
        quarantined: rows rejected per validation reason (only reasons that occurred).
        dropped_tickers: tickers read that kept no accepted row at all, sorted.
    """

    bars: pl.DataFrame
    raw_rows: int
    raw_tickers: int
    quarantined: dict[str, int] = field(default_factory=dict)
    dropped_tickers: list[str] = field(default_factory=list)


def bar_file_source(path: str | Path) -> ParquetSource | CsvSource:
    """The file source for ``path``: CSV for a ``.csv`` file, Parquet for anything else (a
    ``.parquet`` file or a folder searched for them)."""
    return CsvSource(path) if Path(path).suffix.lower() == ".csv" else ParquetSource(path)


def load_clean_bars(
    path: str | Path,
    *,
    start: dt.date | None = None,
    end: dt.date | None = None,
    tickers: Sequence[str] | None = None,
    rules: ValidationRules | None = None,
) -> CleanBars:
    """Read ``path``, conform and validate it, and return its accepted bars.

    Args:
        path: Parquet or CSV bar file (or a folder of Parquet files), see :func:`bar_file_source`.
        start, end: first and last date kept, inclusive; ``None`` keeps every date. The cut is
            made after validation, so a bar's verdict (e.g. a one-bar spike, which needs the next
            bar) does not depend on the window asked for.
        tickers: tickers to read (all in the file when ``None``). Validation is per ticker, so
            reading a subset accepts exactly the rows the whole file would for those tickers.
        rules: validation thresholds; the product's defaults when ``None``.

    Raises:
        LookupError: a requested ticker has no row in the file.
        model_code.market_data.sources.base.SourceConfigError: the path does not exist or
            cannot be read.
    """
    source = bar_file_source(path)
    names = source.list_tickers() if tickers is None else list(tickers)
    batch = source.fetch(names, dt.date.min, dt.date.max)
    if batch.missing:
        raise LookupError(f"{path}: no bars for {', '.join(sorted(batch.missing))}")
    raw = batch.bars
    result = validate_ohlcv(raw, rules=rules)
    accepted = result.accepted.sort("ticker", "date")
    kept = set(accepted["ticker"].unique().to_list())
    read = set(raw["ticker"].drop_nulls().unique().to_list())
    if start is not None or end is not None:
        accepted = accepted.filter(pl.col("date").is_between(start or dt.date.min, end or dt.date.max))
    return CleanBars(
        bars=accepted,
        raw_rows=raw.height,
        raw_tickers=len(read),
        quarantined={k: v for k, v in result.quarantine_counts().items() if v},
        dropped_tickers=sorted(read - kept),
    )


def repo_relative(path: str | Path) -> str:
    """``path`` as a report prints it: relative to the repository root (``../shared/data/...``
    for the shared data set), so no generated file names a machine-specific directory. A relative
    ``path`` is taken relative to the current directory first."""
    try:
        return Path(os.path.relpath(os.path.abspath(path), REPO_ROOT)).as_posix()
    except ValueError:  # another drive on Windows: no relative path exists
        return Path(path).as_posix()
