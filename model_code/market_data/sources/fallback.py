"""Ask sources in a configured order; per ticker, the first source that answers wins.

The winner's name is written into each bar's ``source`` column. Tickers that no source could
serve come back in :attr:`FetchResult.failures` with every source's reason, in order, so the
operator sees e.g. ``yfinance: HTTP 500 after 4 attempts; alphavantage: unknown ticker``.

A source that was *unavailable* (no usable answer after every retry: timeouts, refused
connections, 5xx, throttling) is told apart from one that answered "no such ticker": such
tickers are in :attr:`FetchResult.unavailable`, and a fetch that got no bar at all while a
source failed is an outage (:meth:`FetchResult.outage`), which ingestion does not pass off as
an empty day.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import polars as pl

from model_code.market_data.schema import concat_ohlcv
from model_code.market_data.sources.base import OhlcvSource, SourceError, SourceUnavailable


@dataclass
class FetchResult:
    """Bars from the whole chain, and what could not be fetched.

    Attributes:
        bars: every bar the sources returned (canonical OHLCV columns).
        served_by: ticker → the source whose bars were taken.
        failures: ticker → each asked source's reason, for tickers no source served.
        source_errors: source → the error that failed its whole request.
        unavailable: ticker → {source: reason} for each source that was unavailable for it
            (raised :class:`SourceUnavailable` for the whole request, or listed the ticker in
            :attr:`SourceBatch.unavailable`), whether or not a later source served the ticker.
        unreadable_files: source → {file: reason} for the files a file source skipped.
    """

    bars: pl.DataFrame
    served_by: dict[str, str] = field(default_factory=dict)
    failures: dict[str, list[str]] = field(default_factory=dict)
    source_errors: dict[str, str] = field(default_factory=dict)
    unavailable: dict[str, dict[str, str]] = field(default_factory=dict)
    unreadable_files: dict[str, dict[str, str]] = field(default_factory=dict)

    def last_errors(self) -> dict[str, str]:
        """Source → its last error: the error of its whole request, else the reason of the last
        ticker it was unavailable for."""
        errors: dict[str, str] = {}
        for reasons in self.unavailable.values():
            errors.update(reasons)
        errors.update(self.source_errors)
        return errors

    def unserved_unavailable(self) -> dict[str, dict[str, str]]:
        """The tickers no source served while some source was unavailable for them (a partial
        outage), each with those sources' reasons."""
        return {t: r for t, r in self.unavailable.items() if t in self.failures}

    def outage(self) -> dict[str, str]:
        """Source → last error when nothing arrived because sources failed (every asked source
        erred or was unavailable, none returned a bar); empty when bars arrived or when the
        sources answered but had none (that is staleness, not an outage)."""
        if self.bars.height:
            return {}
        return self.last_errors()


class FallbackChain:
    """Sources in priority order, with optional per-ticker pins (``ticker -> source name``)."""

    def __init__(self, sources: Sequence[OhlcvSource], pinned: Mapping[str, str] | None = None):
        if not sources:
            raise ValueError("a fallback chain needs at least one source")
        names = [s.name for s in sources]
        if len(set(names)) != len(names):
            raise ValueError(f"source listed twice in the fallback order: {names}")
        self.sources = list(sources)
        self.pinned = dict(pinned or {})

    def fetch(self, tickers: Sequence[str], start: dt.date, end: dt.date) -> FetchResult:
        reasons: dict[str, list[str]] = {t: [] for t in tickers}
        served_by: dict[str, str] = {}
        frames: list[pl.DataFrame] = []
        source_errors: dict[str, str] = {}
        unavailable: dict[str, dict[str, str]] = {}
        unreadable_files: dict[str, dict[str, str]] = {}
        names = {s.name for s in self.sources}
        for ticker, pin in self.pinned.items():
            if ticker in reasons and pin not in names:
                reasons[ticker].append(f"pinned to source {pin!r}, which is not in the fallback order")
        for source in self.sources:
            ask = [
                t for t in tickers if t not in served_by and self.pinned.get(t, source.name) == source.name
            ]
            if not ask:
                continue
            try:
                batch = source.fetch(ask, start, end)
            except SourceError as exc:
                source_errors[source.name] = str(exc)
                for t in ask:
                    reasons[t].append(f"{source.name}: {exc}")
                    if isinstance(exc, SourceUnavailable):
                        unavailable.setdefault(t, {})[source.name] = str(exc)
                continue
            got = set(batch.bars.get_column("ticker").drop_nulls().unique().to_list())
            for t in ask:
                if t in got:
                    served_by[t] = source.name
                    continue
                reason = batch.missing.get(t, "no bars returned")
                reasons[t].append(f"{source.name}: {reason}")
                if t in batch.unavailable:
                    unavailable.setdefault(t, {})[source.name] = reason
            if batch.unreadable_files:
                unreadable_files[source.name] = dict(batch.unreadable_files)
            frames.append(batch.bars)
        failures = {t: r for t, r in reasons.items() if t not in served_by}
        return FetchResult(
            bars=concat_ohlcv(frames),
            served_by=served_by,
            failures=failures,
            source_errors=source_errors,
            unavailable=unavailable,
            unreadable_files=unreadable_files,
        )
