"""Metadata values every asset shares: a typed table preview, an embedded PNG, per-partition floats.

* :func:`table` is a ``MetadataValue.table`` with its ``TableSchema`` (column names and types,
  floats rounded to ``digits`` significant digits), at most ``limit`` rows.
* :func:`image` embeds PNG bytes from ``model_code/reporting/plots.py`` as a markdown data-URI
  image (Dagster has no image metadata kind; the UI renders the markdown).
* :func:`per_partition` makes each partition of a ranged run describe itself: Dagster writes one
  materialization per partition key and merges ``context.add_asset_metadata(...,
  partition_key=k)`` over the run's ``MaterializeResult`` metadata, so a key given here replaces
  the run total in that partition's event (verified in ``tests/integration/test_market_assets.py``).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Mapping

import dagster as dg
import polars as pl

from model_code.reporting.plots import markdown_image


def _type(dtype: pl.DataType) -> str:
    if dtype.is_float():
        return "float"
    if dtype.is_integer():
        return "int"
    if dtype == pl.Boolean:
        return "bool"
    if dtype == pl.Date:
        return "date"
    if dtype.is_temporal():
        return "datetime"
    return "string"


def rounded(x: float | None, digits: int = 4) -> float | None:
    """``x`` to ``digits`` significant digits (None and non-finite values kept as they are)."""
    if x is None or not math.isfinite(x) or x == 0:
        return x
    return round(x, digits - 1 - int(math.floor(math.log10(abs(x)))))


def _cell(x: object, kind: str, digits: int) -> object:
    if x is None:
        return None
    if kind == "float":
        return rounded(float(x), digits)  # type: ignore[arg-type]
    if isinstance(x, dt.date | dt.datetime):
        return x.isoformat()
    return x


def table(frame: pl.DataFrame, *, limit: int = 20, digits: int = 4) -> dg.MetadataValue:
    """The first ``limit`` rows of ``frame`` as a typed table preview."""
    kinds = {c: _type(t) for c, t in frame.schema.items()}
    records = [
        dg.TableRecord({c: _cell(v, kinds[c], digits) for c, v in row.items()})
        for row in frame.head(limit).iter_rows(named=True)
    ]
    schema = dg.TableSchema(columns=[dg.TableColumn(c, k) for c, k in kinds.items()])
    return dg.MetadataValue.table(records=records, schema=schema)


def image(png: bytes, title: str) -> dg.MetadataValue:
    """PNG bytes as a markdown image the UI shows inline."""
    return dg.MetadataValue.md(markdown_image(png, title))


def floats(values: Mapping[str, float | int | None]) -> dict[str, dg.MetadataValue]:
    """Float metadata (NaN for None), so the UI charts each key across materializations."""
    return {k: dg.MetadataValue.float(float("nan") if v is None else float(v)) for k, v in values.items()}


def per_partition(
    context: dg.AssetExecutionContext,
    frame: pl.DataFrame,
    date_column: str,
    metrics: Callable[[pl.DataFrame], Mapping[str, float | int | None]],
) -> None:
    """Give each partition of the run the ``metrics`` of its own rows (``date_column`` = key).

    A one-partition run needs nothing (its totals are the partition's). Each partition also
    gets ``run_partitions``, the length of the range it was materialized in.
    """
    keys = context.partition_keys
    if len(keys) < 2:
        return
    day = pl.col(date_column).cast(pl.String) if frame.height else None
    for key in keys:
        own = frame.filter(day == key) if day is not None else frame
        context.add_asset_metadata(
            {**floats(metrics(own)), "run_partitions": dg.MetadataValue.float(float(len(keys)))},
            partition_key=key,
        )
