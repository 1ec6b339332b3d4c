"""The canonical daily bar (OHLCV) layout every source must produce.

Prices are in the listing currency (USD for the bundled and shared data), ``close`` is the raw
close and ``adj_close`` the close adjusted for splits and dividends. Close-only series (e.g. a
dataset of adjusted closes) keep ``open``/``high``/``low``/``volume`` NULL: nothing downstream
may fabricate them.
"""

from __future__ import annotations

from collections.abc import Iterable

import polars as pl

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


class OhlcvSchemaError(ValueError):
    """A frame cannot be read as OHLCV bars: a required column is missing or has a wrong type."""


def empty_ohlcv() -> pl.DataFrame:
    """An empty frame with the canonical OHLCV schema."""
    return pl.DataFrame(schema=OHLCV_SCHEMA)


def conform_ohlcv(frame: pl.DataFrame, *, source: str, origin: str) -> pl.DataFrame:
    """Rename, add and order columns into the canonical schema without dropping any row.

    Columns are matched case-insensitively (``Adj Close`` → ``adj_close``). Optional columns
    that are absent are added as NULL. Values that cannot be cast become NULL here and are
    quarantined later by the validator (``unparseable_value``), so no row is lost.

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
            f"found {sorted(frame.columns)}"
        )
    exprs: list[pl.Expr] = []
    for name, dtype in OHLCV_SCHEMA.items():
        if name == "source":
            exprs.append(pl.lit(source, dtype=pl.String()).alias("source"))
        elif name not in frame.columns:
            exprs.append(pl.lit(None, dtype=dtype).alias(name))
        elif name == "date":
            exprs.append(_as_date(frame.schema["date"]).alias("date"))
        else:
            exprs.append(pl.col(name).cast(dtype, strict=False).alias(name))
    raw_flags = _unparseable_flags(frame)
    return frame.select(*exprs, raw_flags)


def _canonical_name(column: str) -> str:
    key = column.strip().lower().replace(" ", "_").replace("-", "_")
    return {"adjclose": "adj_close", "adjusted_close": "adj_close", "symbol": "ticker"}.get(key, key)


def _as_date(dtype: pl.DataType) -> pl.Expr:
    col = pl.col("date")
    if dtype == pl.Date:
        return col
    if isinstance(dtype, pl.Datetime):
        return col.dt.replace_time_zone(None).dt.date() if dtype.time_zone else col.dt.date()
    return col.cast(pl.String).str.strip_chars().str.to_date(strict=False)


def _unparseable_flags(frame: pl.DataFrame) -> pl.Expr:
    """Name of the first column whose non-null raw value failed to cast, else NULL."""
    checks: list[pl.Expr] = []
    for name, dtype in OHLCV_SCHEMA.items():
        if name == "source" or name not in frame.columns:
            continue
        raw = pl.col(name)
        cast = _as_date(frame.schema[name]) if name == "date" else raw.cast(dtype, strict=False)
        checks.append(pl.when(raw.is_not_null() & cast.is_null()).then(pl.lit(name)))
    if not checks:
        return pl.lit(None, dtype=pl.String()).alias("_unparseable")
    return pl.coalesce(checks).alias("_unparseable")


def concat_ohlcv(frames: Iterable[pl.DataFrame]) -> pl.DataFrame:
    """Stack conformed frames; an empty input gives an empty canonical frame."""
    frames = [f for f in frames if f.height]
    return pl.concat(frames, how="diagonal_relaxed") if frames else empty_ohlcv()
