"""The universe: which tickers the platform tracks, and from which source each is preferred.

It is configuration, read from YAML::

    tickers:
      - {ticker: AAPL, source: bundled}
      - {ticker: MSFT}            # source omitted: the market-data fallback order decides
    # or, for a whole source at once:
    include_sources: [bundled]    # every ticker that source lists

The default universe is every ticker the offline ``bundled`` source ships.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

_TICKER = re.compile(r"^[A-Z0-9^][A-Z0-9.\-^=]{0,14}$")


class UniverseError(ValueError):
    """The universe file or list is malformed; the message names the entry."""


@dataclass(frozen=True)
class UniverseMember:
    """One tracked ticker and, optionally, the source it must come from."""

    ticker: str
    source: str | None = None


@dataclass(frozen=True)
class Universe:
    """An ordered, duplicate-free list of tracked tickers."""

    members: tuple[UniverseMember, ...] = field(default_factory=tuple)

    @property
    def tickers(self) -> list[str]:
        return [m.ticker for m in self.members]

    def pinned_source(self, ticker: str) -> str | None:
        return next((m.source for m in self.members if m.ticker == ticker), None)


def parse_universe(entries: list[object], *, origin: str = "universe") -> Universe:
    """Validate a list of ``{ticker, source?}`` mappings or bare ticker strings."""
    members: list[UniverseMember] = []
    seen: set[str] = set()
    for i, entry in enumerate(entries):
        if isinstance(entry, str):
            entry = {"ticker": entry}
        if not isinstance(entry, dict) or "ticker" not in entry:
            raise UniverseError(f"{origin}: entry {i} must be a ticker or {{ticker: ...}}, got {entry!r}")
        ticker = str(entry["ticker"]).strip().upper()
        if not _TICKER.match(ticker):
            raise UniverseError(f"{origin}: entry {i} has an invalid ticker {entry['ticker']!r}")
        if ticker in seen:
            raise UniverseError(f"{origin}: ticker {ticker!r} is listed twice")
        seen.add(ticker)
        source = entry.get("source")
        members.append(UniverseMember(ticker, str(source) if source else None))
    return Universe(tuple(members))


def load_universe(
    path: str | Path, *, list_source: Callable[[str], list[str] | None] | None = None
) -> Universe:
    """Read a universe YAML file.

    Args:
        path: the YAML file.
        list_source: source name → every ticker it serves (or ``None`` if it cannot say);
            called only to expand ``include_sources``.
    """
    path = Path(path)
    if not path.is_file():
        raise UniverseError(f"universe file {path} does not exist")
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise UniverseError(f"universe file {path} is not valid YAML: {exc}") from exc
    if not isinstance(doc, dict):
        raise UniverseError(f"universe file {path} must be a mapping with 'tickers'")
    entries: list[object] = list(doc.get("tickers") or [])
    for source in doc.get("include_sources") or []:
        listed = list_source(source) if list_source else None
        if listed is None:
            raise UniverseError(f"universe file {path}: source {source!r} cannot list its tickers")
        explicit = {str(e["ticker"] if isinstance(e, dict) else e).upper() for e in entries}
        entries.extend({"ticker": t, "source": source} for t in listed if t not in explicit)
    if not entries:
        raise UniverseError(f"universe file {path} lists no tickers")
    return parse_universe(entries, origin=str(path))
