"""Ingest one window of daily bars in four phases: read what is stored around the window, fetch
(no warehouse), validate (pure), store (one transaction).

Accepted bars are upserted into ``market.ohlcv``, rejected rows into ``market.quarantine``,
series findings into ``market.data_quality``, restatements into ``market.ohlcv_revisions``, in
one transaction. Rows already stored are only ever replaced by an accepted bar for the same
(ticker, date): a bad batch can never overwrite or delete good history. Every received row is
accounted for: stored, quarantined (held jumps included) or outside the window; a batch for
which that does not add up raises :class:`RowCountError` before anything is written.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field

import duckdb
import polars as pl

from model_code.market_data.calendar import TradingCalendar, trading_calendar
from model_code.market_data.sources.fallback import FallbackChain, FetchResult
from model_code.validation import StoredBars, ValidationResult, ValidationRules, validate_ohlcv
from model_code.validation.findings import SERIES_KINDS
from model_code.warehouse import Warehouse


class RowCountError(RuntimeError):
    """Received rows do not add up to stored + quarantined + held + outside the window."""


@dataclass
class IngestionReport:
    """What one window's ingestion did, for metadata and checks (counts are rows).

    ``rows_received = rows_accepted + rows_quarantined + rows_held + rows_outside_window``
    holds for every report (:func:`validate_window` refuses a batch for which it does not).
    ``rows_quarantined`` excludes the held rows (``unconfirmed_jump``): they are pending, not
    rejected. ``rows_written`` counts the bars upserted into ``market.ohlcv``: the accepted rows
    and the bars held by earlier runs that this batch confirmed (``held_released``); 0 for a
    window that was not stored (an outage).
    """

    start: dt.date
    end: dt.date
    tickers_requested: int
    rows_received: int
    rows_written: int
    rows_quarantined: int
    rows_accepted: int = 0
    rows_held: int = 0
    rows_outside_window: int = 0
    held_released: int = 0
    held_rejected: int = 0
    bars_restated: int = 0
    served_by: dict[str, str] = field(default_factory=dict)
    failures: dict[str, list[str]] = field(default_factory=dict)
    source_errors: dict[str, str] = field(default_factory=dict)
    unavailable: dict[str, dict[str, str]] = field(default_factory=dict)
    outage: dict[str, str] = field(default_factory=dict)
    unreadable_files: dict[str, dict[str, str]] = field(default_factory=dict)
    validation: ValidationResult | None = None

    @property
    def quarantine_fraction(self) -> float:
        return self.rows_quarantined / self.rows_received if self.rows_received else 0.0


@dataclass
class ValidatedWindow:
    """A fetched window after validation: the result, and the rows outside the window."""

    result: ValidationResult
    rows_received: int
    rows_outside_window: int


def read_stored(warehouse: Warehouse, start: dt.date, end: dt.date) -> StoredBars:
    """What is stored around ``start..end`` (inclusive), read before the fetch.

    The last bar before the window and the first after it, the window's stored bars, and the
    bars held as unconfirmed jumps that wait for their next bar (``sql/queries/``).
    """
    return StoredBars(
        previous=warehouse.query("@ohlcv_last_bar_before", [start]),
        window=warehouse.query("@ohlcv_window_bars", [start, end]),
        following=warehouse.query("@ohlcv_first_bar_after", [end]),
        held=warehouse.query("@ohlcv_held_jumps", [start]),
    )


def fetch_window(chain: FallbackChain, tickers: list[str], start: dt.date, end: dt.date) -> FetchResult:
    """Fetch ``tickers`` for ``start..end`` (inclusive) from the sources; touches no warehouse.

    This is the slow part (network, files), so callers run it with the DuckDB file closed.
    """
    return chain.fetch(tickers, start, end)


def validate_window(
    fetched: FetchResult,
    stored: StoredBars,
    start: dt.date,
    end: dt.date,
    *,
    rules: ValidationRules | None = None,
    calendar: TradingCalendar | None = None,
) -> ValidatedWindow:
    """Validate the fetched rows dated in ``start..end`` against what is stored (pure).

    Rows dated outside the window are not validated nor stored, only counted (a source that
    filters its own rows never sends any). Rows without a date stay in: the validator
    quarantines them.

    Raises:
        RowCountError: the rows received do not add up (nothing has been written).
    """
    bars = fetched.bars
    inside = pl.col("date").is_null() | pl.col("date").is_between(start, end)
    in_window = bars.filter(inside)
    result = validate_ohlcv(in_window, rules=rules, calendar=calendar, stored=stored)
    outside = bars.height - in_window.height
    check_row_counts(
        received=bars.height,
        accepted=result.accepted.height,
        quarantined=result.quarantined.height,
        outside_window=outside,
    )
    return ValidatedWindow(result, rows_received=bars.height, rows_outside_window=outside)


def check_row_counts(*, received: int, accepted: int, quarantined: int, outside_window: int) -> None:
    """Raise :class:`RowCountError` unless received = accepted + quarantined + outside_window
    (held rows are among the quarantined ones)."""
    accounted = accepted + quarantined + outside_window
    if accounted != received:
        raise RowCountError(
            f"{received} rows received but {accounted} accounted for ({accepted} accepted, "
            f"{quarantined} quarantined or held, {outside_window} outside the window): "
            "refusing to write a batch that would lose or invent rows"
        )


def store_window(
    warehouse: Warehouse,
    fetched: FetchResult,
    validated: ValidatedWindow,
    start: dt.date,
    end: dt.date,
    *,
    tickers_requested: int,
    calendar: TradingCalendar | None = None,
    now: dt.datetime | None = None,
) -> IngestionReport:
    """Write a validated window in one transaction.

    Sessions; accepted and released bars; quarantine rows (the held rows this batch decided,
    and the window's earlier held rows for the keys it re-delivered, are replaced by the new
    decision); revisions; findings (the series kinds of every re-evaluated bar are replaced,
    so a gap that a later bar closed does not linger).
    """
    calendar = calendar or trading_calendar()
    now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    stamp = pl.lit(now, dtype=pl.Datetime("us"))
    result = validated.result
    bars = pl.concat([result.accepted, result.released], how="vertical_relaxed")
    quarantine = pl.concat([result.quarantined, result.rejected_held], how="vertical_relaxed")
    # Held rows decided now (released or rejected), and the window's earlier held rows for keys
    # delivered again, give way to this batch's decision.
    decided = pl.concat(
        [
            result.resolved_held,
            result.accepted.select("ticker", "date"),
            result.quarantined.select("ticker", "date"),
        ]
    ).filter(pl.col("ticker").is_not_null() & pl.col("date").is_not_null())
    with warehouse.transaction():
        write_sessions(warehouse, calendar, start, end)
        _delete_held(warehouse, decided)
        written = warehouse.upsert("market.ohlcv", bars.with_columns(ingested_at=stamp), ["ticker", "date"])
        warehouse.upsert("market.quarantine", quarantine.with_columns(ingested_at=stamp), ["quarantine_id"])
        warehouse.upsert(
            "market.ohlcv_revisions",
            result.revisions.with_columns(ingested_at=stamp),
            ["ticker", "date", "ingested_at"],
        )
        _delete_series_findings(warehouse, result.refreshed)
        warehouse.upsert(
            "market.data_quality",
            result.findings.with_columns(found_at=stamp),
            ["ticker", "date", "kind"],
        )
    return window_report(
        fetched, validated, start, end, tickers_requested=tickers_requested, rows_written=written
    )


def window_report(
    fetched: FetchResult,
    validated: ValidatedWindow,
    start: dt.date,
    end: dt.date,
    *,
    tickers_requested: int,
    rows_written: int,
) -> IngestionReport:
    """The report of a validated window, ``rows_written`` of its bars having been stored (0 when
    the window was not stored, as in an outage)."""
    result = validated.result
    return IngestionReport(
        start=start,
        end=end,
        tickers_requested=tickers_requested,
        rows_received=validated.rows_received,
        rows_written=rows_written,
        rows_quarantined=result.quarantined.height - result.rows_held,
        rows_accepted=result.accepted.height,
        rows_held=result.rows_held,
        rows_outside_window=validated.rows_outside_window,
        held_released=result.released.height,
        held_rejected=result.rejected_held.height,
        bars_restated=result.revisions.height,
        served_by=fetched.served_by,
        failures=fetched.failures,
        source_errors=fetched.source_errors,
        unavailable=fetched.unserved_unavailable(),
        outage=fetched.outage(),
        unreadable_files=fetched.unreadable_files,
        validation=result,
    )


def ingest_window(
    warehouse: Warehouse,
    chain: FallbackChain,
    tickers: list[str],
    start: dt.date,
    end: dt.date,
    *,
    rules: ValidationRules | None = None,
    calendar: TradingCalendar | None = None,
    now: dt.datetime | None = None,
) -> IngestionReport:
    """Read, fetch, validate and store one window through an already open warehouse.

    For scripts and tests that own the file; the ``market/ohlcv`` asset runs the same phases
    with the file closed while it fetches and validates.
    """
    calendar = calendar or trading_calendar()
    stored = read_stored(warehouse, start, end)
    fetched = fetch_window(chain, tickers, start, end)
    validated = validate_window(fetched, stored, start, end, rules=rules, calendar=calendar)
    return store_window(
        warehouse, fetched, validated, start, end, tickers_requested=len(tickers), calendar=calendar, now=now
    )


def write_sessions(warehouse: Warehouse, calendar: TradingCalendar, start: dt.date, end: dt.date) -> int:
    """Store the calendar's sessions in ``start..end`` with their global ordinals."""
    days = calendar.sessions_in_range(start, end)
    if not len(days):
        return 0
    first = int(calendar.session_index(days[:1])[0])
    frame = pl.DataFrame(
        {"date": pl.Series(days).cast(pl.Date), "ordinal": pl.int_range(first, first + len(days), eager=True)}
    ).cast({"ordinal": pl.Int32})
    return warehouse.upsert("market.trading_sessions", frame, ["date"])


def _delete_held(warehouse: Warehouse, keys: pl.DataFrame) -> None:
    """Delete the held rows (``unconfirmed_jump``) of ``keys`` (ticker, date): the batch decided
    them, or re-delivered their bar, and writes its own decision instead."""
    if not keys.height:
        return
    with _registered(warehouse, "_pm_held_keys", keys.select("ticker", "date").unique()):
        warehouse.execute(
            "DELETE FROM market.quarantine AS q WHERE q.reason = 'unconfirmed_jump' AND EXISTS "
            "(SELECT 1 FROM _pm_held_keys AS k WHERE k.ticker = q.ticker AND k.date = q.date)"
        )


def _delete_series_findings(warehouse: Warehouse, keys: pl.DataFrame) -> None:
    """Delete the series findings (:data:`SERIES_KINDS`) of ``keys`` before they are rewritten."""
    if not keys.height:
        return
    kinds = ", ".join(f"'{k}'" for k in SERIES_KINDS)
    with _registered(warehouse, "_pm_refreshed", keys.select("ticker", "date").unique()):
        warehouse.execute(
            f"DELETE FROM market.data_quality AS f WHERE f.kind IN ({kinds}) AND EXISTS "
            "(SELECT 1 FROM _pm_refreshed AS k WHERE k.ticker = f.ticker AND k.date = f.date)"
        )


@contextmanager
def _registered(warehouse: Warehouse, name: str, frame: pl.DataFrame) -> Iterator[None]:
    """``frame`` visible to SQL as ``name`` for the block."""
    warehouse.conn.register(name, frame.to_arrow())
    try:
        yield
    finally:
        with suppress(duckdb.Error):  # refused inside an aborted transaction; replaced next time
            warehouse.conn.unregister(name)
