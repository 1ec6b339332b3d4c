"""Ingest one window of daily bars: fetch (no warehouse), validate, store (one transaction).

Accepted bars are upserted into ``market.ohlcv``, rejected rows into ``market.quarantine``,
series findings into ``market.data_quality``, in one transaction. Rows already stored are
only ever replaced by an accepted bar for the same (ticker, date): a bad batch can never
overwrite or delete good history.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import polars as pl

from model_code.market_data.calendar import TradingCalendar, trading_calendar
from model_code.market_data.sources.fallback import FallbackChain, FetchResult
from model_code.validation import ValidationResult, ValidationRules, validate_ohlcv
from model_code.warehouse import Warehouse


@dataclass
class IngestionReport:
    """What one window's ingestion did, for metadata and checks."""

    start: dt.date
    end: dt.date
    tickers_requested: int
    rows_received: int
    rows_written: int
    rows_quarantined: int
    served_by: dict[str, str] = field(default_factory=dict)
    failures: dict[str, list[str]] = field(default_factory=dict)
    source_errors: dict[str, str] = field(default_factory=dict)
    validation: ValidationResult | None = None

    @property
    def quarantine_fraction(self) -> float:
        return self.rows_quarantined / self.rows_received if self.rows_received else 0.0


def fetch_window(chain: FallbackChain, tickers: list[str], start: dt.date, end: dt.date) -> FetchResult:
    """Fetch ``tickers`` for ``start..end`` (inclusive) from the sources; touches no warehouse.

    This is the slow part (network, files), so callers run it with the DuckDB file closed.
    """
    return chain.fetch(tickers, start, end)


def store_window(
    warehouse: Warehouse,
    fetched: FetchResult,
    result: ValidationResult,
    start: dt.date,
    end: dt.date,
    *,
    tickers_requested: int,
    calendar: TradingCalendar | None = None,
    now: dt.datetime | None = None,
) -> IngestionReport:
    """Write a validated window in one transaction: sessions, accepted bars, quarantine, findings."""
    calendar = calendar or trading_calendar()
    now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    stamp = pl.lit(now, dtype=pl.Datetime("us"))
    with warehouse.transaction():
        write_sessions(warehouse, calendar, start, end)
        written = warehouse.upsert(
            "market.ohlcv", result.accepted.with_columns(ingested_at=stamp), ["ticker", "date"]
        )
        warehouse.upsert(
            "market.quarantine", result.quarantined.with_columns(ingested_at=stamp), ["quarantine_id"]
        )
        warehouse.upsert(
            "market.data_quality",
            result.findings.with_columns(found_at=stamp),
            ["ticker", "date", "kind"],
        )
    return IngestionReport(
        start=start,
        end=end,
        tickers_requested=tickers_requested,
        rows_received=fetched.bars.height,
        rows_written=written,
        rows_quarantined=result.quarantined.height,
        served_by=fetched.served_by,
        failures=fetched.failures,
        source_errors=fetched.source_errors,
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
    """Fetch, validate and store one window through an already open warehouse.

    For scripts and tests that own the file; the ``market/ohlcv`` asset runs the same phases
    with the file closed while it fetches (:func:`fetch_window`, :func:`store_window`).
    """
    calendar = calendar or trading_calendar()
    fetched = fetch_window(chain, tickers, start, end)
    previous = warehouse.query("@ohlcv_last_bar_before", [start])
    result = validate_ohlcv(fetched.bars, rules=rules, calendar=calendar, previous=previous)
    return store_window(
        warehouse, fetched, result, start, end, tickers_requested=len(tickers), calendar=calendar, now=now
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
