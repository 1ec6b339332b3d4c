"""How error messages quote what a user or a data file supplied: briefly, never in full.

A 10,000-character ticker in a data file must not become a 10,000-character error message, a
log line no one can read, or a metadata value the UI truncates somewhere arbitrary. Every
message in :mod:`model_code.market_data` that repeats user input goes through :func:`echo`
(quoted values) or :func:`clip` (free text such as a reader's error), and quarantine details
built in polars go through :func:`echo_expr`; all three cut at the same place the same way.
"""

from __future__ import annotations

import polars as pl

ECHO_CHARS = 40  # characters of an echoed value kept before the cut


def clip(text: str, limit: int = ECHO_CHARS) -> str:
    """``text`` itself when it has at most ``limit`` characters, else its first ``limit``
    characters followed by ``…(N chars)``, N being the full length in characters."""
    return text if len(text) <= limit else f"{text[:limit]}…({len(text)} chars)"


def echo(value: object, limit: int = ECHO_CHARS) -> str:
    """``value`` as an error message quotes it: ``repr`` of a string (``'AAPL'``), ``repr``
    of anything else (``True``, ``{'source': 'x'}``), cut like :func:`clip` after ``limit``
    characters of the string (or of the ``repr``)."""
    if isinstance(value, str):
        return repr(value) if len(value) <= limit else f"{value[:limit]!r}…({len(value)} chars)"
    return clip(repr(value), limit)


def echo_expr(text: pl.Expr, limit: int = ECHO_CHARS) -> pl.Expr:
    """:func:`echo` of a string column, as a polars expression: ``'02/04/2019'``, or the first
    ``limit`` characters in quotes followed by ``…(N chars)``. NULL stays NULL."""
    length = text.str.len_chars()
    quoted_head = pl.lit("'") + text.str.slice(0, limit) + pl.lit("'")
    return (
        pl.when(length > limit)
        .then(quoted_head + pl.lit("…(") + length.cast(pl.String) + pl.lit(" chars)"))
        .otherwise(pl.lit("'") + text + pl.lit("'"))
    )
