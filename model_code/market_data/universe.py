"""The universe: which tickers the platform tracks, and from which source each is preferred.

It is configuration, read from YAML::

    tickers:
      - {ticker: AAPL, source: bundled}
      - {ticker: MSFT}            # source omitted: the market-data fallback order decides
    # or, for a whole source at once:
    include_sources: [bundled]    # every ticker that source lists

The default universe is every ticker the offline ``bundled`` source ships.

Tickers are read as the text written, quoted or not: YAML would otherwise turn ``ON``, ``NO``,
``YES`` or ``TRUE`` into booleans and ``0700`` or ``1_000`` into numbers. They are ASCII only:
lower-case ASCII letters are upper-cased, and any other letter (``ı``, ``é``, a full-width
``Ａ``) is refused rather than folded (``"ıbm".upper()`` is ``IBM``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from model_code.market_data.echo import echo

_TICKER = re.compile(r"^[A-Z0-9^][A-Z0-9.\-^=]{0,14}$")
TICKER_RULE = "1 to 15 ASCII letters, digits or . - ^ = (not starting with . - =)"
_SOURCE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_YAML_TEXT = "tag:yaml.org,2002:str"


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


def canonical_ticker(raw: object, *, where: str) -> str:
    """The ticker as stored: spaces and tabs around it removed, ASCII letters upper-cased.

    Args:
        raw: the ticker as written (must be text).
        where: what the message names first (a file and entry, a data file).

    Raises:
        UniverseError: ``raw`` is not text, holds a non-ASCII character (never case-folded),
            or breaks :data:`TICKER_RULE`; the message quotes ``raw`` cut by
            :func:`~model_code.market_data.echo.echo`.
    """
    if not isinstance(raw, str):
        raise UniverseError(
            f"{where}: ticker {echo(raw)} is a {type(raw).__name__}, not text (in YAML, quote it)"
        )
    text = raw.strip(" \t")
    foreign = next((c for c in text if not c.isascii()), None)
    if foreign is not None:
        raise UniverseError(
            f"{where}: ticker {echo(raw)} contains the non-ASCII character {foreign!r} "
            f"(U+{ord(foreign):04X}); tickers are ASCII and are not case-folded beyond it"
        )
    ticker = text.upper()
    if not _TICKER.match(ticker):
        raise UniverseError(f"{where}: invalid ticker {echo(raw)}; tickers are {TICKER_RULE}")
    return ticker


def parse_universe(entries: list[object], *, origin: str = "universe") -> Universe:
    """Validate a list of ``{ticker, source?}`` mappings or bare tickers (see :func:`canonical_ticker`)."""
    members: list[UniverseMember] = []
    seen: set[str] = set()
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict | list | tuple | set):
            entry = {"ticker": entry}
        if not isinstance(entry, dict) or "ticker" not in entry:
            raise UniverseError(f"{origin}: entry {i} must be a ticker or {{ticker: ...}}, got {echo(entry)}")
        ticker = canonical_ticker(entry["ticker"], where=f"{origin}: entry {i}")
        if ticker in seen:
            raise UniverseError(f"{origin}: ticker {ticker!r} is listed twice")
        seen.add(ticker)
        source = entry.get("source")
        if source is not None and source != "" and not (isinstance(source, str) and _SOURCE.match(source)):
            raise UniverseError(
                f"{origin}: entry {i} ({ticker}) is pinned to {echo(source)}, which is not a source "
                "name (lower-case, e.g. 'bundled', 'parquet')"
            )
        members.append(UniverseMember(ticker, source or None))
    return Universe(tuple(members))


def load_universe(
    path: str | Path, *, list_source: Callable[[str], list[str] | None] | None = None
) -> Universe:
    """Read a universe YAML file (tickers as their literal text, see the module docstring).

    Args:
        path: the YAML file.
        list_source: source name → every ticker it serves (or ``None`` if it cannot say);
            called only to expand ``include_sources``.
    """
    path = Path(path)
    if not path.is_file():
        raise UniverseError(f"universe file {path} does not exist")
    try:
        doc = _read_yaml(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise UniverseError(f"universe file {path} is not valid YAML: {exc}") from exc
    if not isinstance(doc, dict):
        raise UniverseError(f"universe file {path} must be a mapping with 'tickers'")
    entries = doc.get("tickers") or []
    sources = doc.get("include_sources") or []
    for key, value in (("tickers", entries), ("include_sources", sources)):
        if not isinstance(value, list):
            raise UniverseError(f"universe file {path}: {key!r} must be a list, got {echo(value)}")
    entries = list(entries)
    explicit = set(parse_universe(entries, origin=str(path)).tickers)
    for source in sources:
        listed = list_source(source) if list_source else None
        if listed is None:
            raise UniverseError(f"universe file {path}: source {echo(source)} cannot list its tickers")
        entries.extend({"ticker": t, "source": source} for t in listed if t not in explicit)
    if not entries:
        raise UniverseError(f"universe file {path} lists no tickers")
    return parse_universe(entries, origin=str(path))


def _read_yaml(text: str) -> object:
    """``yaml.safe_load`` of ``text``, except that every ticker (an item of ``tickers``, or the
    ``ticker`` of a mapping item) is built as the string written, whatever YAML would resolve
    it to (``ON`` → ``'ON'``, not ``True``; ``0700`` → ``'0700'``, not ``448``)."""
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return None
        for node in _ticker_nodes(root):
            node.tag = _YAML_TEXT  # the scalar's value is its literal text; keep it as such
        return loader.construct_document(root)
    finally:
        loader.dispose()


def _ticker_nodes(root: yaml.Node) -> list[yaml.ScalarNode]:
    """The scalar nodes of a universe document that hold tickers."""
    found: list[yaml.ScalarNode] = []
    if not isinstance(root, yaml.MappingNode):
        return found
    for key, value in root.value:
        if not (isinstance(key, yaml.ScalarNode) and key.value == "tickers"):
            continue
        if not isinstance(value, yaml.SequenceNode):
            continue
        for item in value.value:
            if isinstance(item, yaml.ScalarNode):
                found.append(item)
            elif isinstance(item, yaml.MappingNode):
                found.extend(
                    v
                    for k, v in item.value
                    if isinstance(k, yaml.ScalarNode)
                    and k.value == "ticker"
                    and isinstance(v, yaml.ScalarNode)
                )
    return found
