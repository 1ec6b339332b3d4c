"""Ask sources in a configured order; per ticker, the first source that answers wins.

The winner's name is written into each bar's ``source`` column. Tickers that no source could
serve come back in :attr:`FetchResult.failures` with every source's reason, in order, so the
operator sees e.g. ``yfinance: HTTP 500 after 4 attempts; alphavantage: unknown ticker``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import polars as pl

from model_code.market_data.schema import concat_ohlcv
from model_code.market_data.sources.base import OhlcvSource, SourceError


@dataclass
class FetchResult:
    """Bars from the whole chain, and what could not be fetched."""

    bars: pl.DataFrame
    served_by: dict[str, str] = field(default_factory=dict)
    failures: dict[str, list[str]] = field(default_factory=dict)
    source_errors: dict[str, str] = field(default_factory=dict)


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
                continue
            got = set(batch.bars.get_column("ticker").drop_nulls().unique().to_list())
            for t in ask:
                if t in got:
                    served_by[t] = source.name
                else:
                    reasons[t].append(f"{source.name}: {batch.missing.get(t, 'no bars returned')}")
            frames.append(batch.bars)
        failures = {t: r for t, r in reasons.items() if t not in served_by}
        return FetchResult(
            bars=concat_ohlcv(frames), served_by=served_by, failures=failures, source_errors=source_errors
        )
