"""The canonical daily bar (OHLCV) layout every source must produce.

Prices are in the listing currency (USD for the bundled and shared data), ``close`` is the raw
close and ``adj_close`` the close adjusted for splits and dividends. Close-only series (e.g. a
dataset of adjusted closes) keep ``open``/``high``/``low``/``volume`` NULL: nothing downstream
may fabricate them.

Dates are never guessed. A date column that is already a date or a timestamp is used as is
(a timestamp's own local date); a text date must be ISO 8601 (``YYYY-MM-DD``, optionally
followed by a time, which is ignored) unless the source names another format (``date_format``,
e.g. ``%m/%d/%Y``). Text that does not match, or reads as a year outside
:data:`DATE_YEARS`, gives a NULL date and a flag, so the validator quarantines the row
(``unparseable_date``) instead of storing it on a day it does not belong to.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import polars as pl

from model_code.market_data.echo import echo, echo_expr

OHLCV_SCHEMA: dict[str, pl.DataType] = {
    "ticker": pl.String(),
    "date": pl.Date(),
    "open": pl.Float64(),
    "high": pl.Float64(),
    "low": pl.Float64(),
    "close": pl.Float64(),
    "adj_close": pl.Float64(),
    "volume": pl.Float64(),
    "source": pl.String(),
}
OHLCV_COLUMNS: tuple[str, ...] = tuple(OHLCV_SCHEMA)
PRICE_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close", "adj_close")
REQUIRED_COLUMNS: tuple[str, ...] = ("ticker", "date", "close")

# ISO 8601 calendar date, optionally with a time of day and offset (which are ignored: a
# daily bar's date is the date written). Zero-padded, four-digit year, nothing else.
ISO_DATE_PATTERN = (
    r"^\d{4}-\d{2}-\d{2}"  # the date
    r"(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?)?$"  # time, offset
)
# Years a parsed text date may have. chrono's ``%Y`` accepts any digit count, so a two-digit
# year written as ``02/04/19`` under ``%m/%d/%Y`` would read as the year 19: refused instead.
DATE_YEARS: tuple[int, int] = (1800, 2199)


class OhlcvSchemaError(ValueError):
    """A frame cannot be read as OHLCV bars: a required column is missing or has a wrong type."""


def empty_ohlcv() -> pl.DataFrame:
    """An empty frame with the canonical OHLCV schema."""
    return pl.DataFrame(schema=OHLCV_SCHEMA)


def conform_ohlcv(
    frame: pl.DataFrame, *, source: str, origin: str, date_format: str | None = None
) -> pl.DataFrame:
    """Rename, add and order columns into the canonical schema without dropping any row.

    Columns are matched case-insensitively (``Adj Close`` → ``adj_close``). Optional columns
    that are absent are added as NULL. Values that cannot be cast become NULL here and are
    quarantined later by the validator (``unparseable_date`` for the date,
    ``unparseable_value`` for the others), so no row is lost.

    Args:
        frame: the source's rows, any column order and case.
        source: name written into the ``source`` column.
        origin: file path or source name, for error messages.
        date_format: chrono/strftime format of text dates (e.g. ``%m/%d/%Y``); ``None`` means
            ISO 8601. Not used for columns that already hold dates or timestamps.

    Returns:
        The canonical columns plus ``_unparseable``: NULL, or the first column whose raw value
        did not parse, followed for a date by the raw text (cut by
        :func:`~model_code.market_data.echo.echo`) and the format it missed, e.g.
        ``date: '02/04/2019' is not a valid ISO 8601 date YYYY-MM-DD``.

    Raises:
        OhlcvSchemaError: a required column (``ticker``, ``date``, ``close``) is missing; the
            message names the column and ``origin`` (a file path or source name).
    """
    renamed = {c: _canonical_name(c) for c in frame.columns}
    frame = frame.rename(renamed)
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise OhlcvSchemaError(
            f"{origin}: missing required column(s) {', '.join(repr(c) for c in missing)}; "
            f"found {echo(sorted(frame.columns), limit=200)}"
        )
    exprs: list[pl.Expr] = []
    for name, dtype in OHLCV_SCHEMA.items():
        if name == "source":
            exprs.append(pl.lit(source, dtype=pl.String()).alias("source"))
        elif name not in frame.columns:
            exprs.append(pl.lit(None, dtype=dtype).alias(name))
        elif name == "date":
            exprs.append(_as_date(frame.schema["date"], date_format).alias("date"))
        else:
            exprs.append(pl.col(name).cast(dtype, strict=False).alias(name))
    raw_flags = _unparseable_flags(frame, date_format)
    return frame.select(*exprs, raw_flags)


def _canonical_name(column: str) -> str:
    key = column.strip().lower().replace(" ", "_").replace("-", "_")
    return {"adjclose": "adj_close", "adjusted_close": "adj_close", "symbol": "ticker"}.get(key, key)


def check_date_format(date_format: str) -> str:
    """``date_format`` if it reads back the dates it writes, else :class:`OhlcvSchemaError`.

    Two test days (2019-02-04, 2019-12-31) are written with ``strftime`` and read back with the
    same format as :func:`conform_ohlcv` reads: a format without a year, a month and a day, or
    one polars cannot use, is refused before any row is read with it.
    """
    for day in (dt.date(2019, 2, 4), dt.date(2019, 12, 31)):
        written = ""
        try:
            written = day.strftime(date_format)
            read = pl.select(_parse_text(pl.lit(written), date_format)).item()
        except (pl.exceptions.PolarsError, pl.exceptions.PanicException, ValueError):
            read = None
        if read != day:
            raise OhlcvSchemaError(
                f"date format {echo(date_format)} does not read back {day} (written as {echo(written)}): "
                "it needs a year, a month and a day, e.g. '%m/%d/%Y'"
            )
    return date_format


def _as_date(dtype: pl.DataType, date_format: str | None) -> pl.Expr:
    col = pl.col("date")
    if dtype == pl.Date:
        return col
    if isinstance(dtype, pl.Datetime):
        return col.dt.replace_time_zone(None).dt.date() if dtype.time_zone else col.dt.date()
    return _parse_text(_date_text(), date_format)


def _date_text() -> pl.Expr:
    return pl.col("date").cast(pl.String).str.strip_chars()


def _parse_text(text: pl.Expr, date_format: str | None) -> pl.Expr:
    """Dates from text in exactly one format (ISO 8601 when ``None``); NULL where it does not fit."""
    if date_format is None:
        iso = text.str.contains(ISO_DATE_PATTERN)
        parsed = pl.when(iso).then(text.str.slice(0, 10).str.to_date("%Y-%m-%d", strict=False))
    else:
        parsed = text.str.to_date(date_format, strict=False, exact=True)
    return pl.when(parsed.dt.year().is_between(*DATE_YEARS)).then(parsed)


def _unparseable_flags(frame: pl.DataFrame, date_format: str | None) -> pl.Expr:
    """What failed to parse in the first column whose non-null raw value did not cast, else NULL."""
    checks: list[pl.Expr] = []
    for name, dtype in OHLCV_SCHEMA.items():
        if name == "source" or name not in frame.columns:
            continue
        raw = pl.col(name)
        if name == "date":
            cast = _as_date(frame.schema[name], date_format)
            expected = (
                "is not a valid ISO 8601 date YYYY-MM-DD"
                if date_format is None
                else f"does not match {date_format!r}"
            )
            what = pl.lit("date: ") + echo_expr(_date_text()) + pl.lit(f" {expected}")
        else:
            cast, what = raw.cast(dtype, strict=False), pl.lit(name)
        checks.append(pl.when(raw.is_not_null() & cast.is_null()).then(what))
    if not checks:
        return pl.lit(None, dtype=pl.String()).alias("_unparseable")
    return pl.coalesce(checks).alias("_unparseable")


def unparseable_column() -> pl.Expr:
    """The column named by the ``_unparseable`` flag (``date``, ``close`` …), NULL when none."""
    return pl.col("_unparseable").str.extract(r"^(\w+)")


def concat_ohlcv(frames: Iterable[pl.DataFrame]) -> pl.DataFrame:
    """Stack conformed frames; an empty input gives an empty canonical frame."""
    frames = [f for f in frames if f.height]
    return pl.concat(frames, how="diagonal_relaxed") if frames else empty_ohlcv()
