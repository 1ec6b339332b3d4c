"""What is stored around a batch: the context the validator's history-aware rules need.

Read from the warehouse before the fetch (``model_code.market_data.ingestion.read_stored``) and
passed to :func:`~model_code.validation.ohlcv_rules.validate_ohlcv`, which stays pure.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from model_code.market_data.schema import OHLCV_SCHEMA

# A bar held by an earlier run, as read back from market.quarantine (ohlcv_held_jumps.sql).
HELD_SCHEMA: dict[str, pl.DataType] = {
    **OHLCV_SCHEMA,
    "quarantine_id": pl.String(),
    "held_at": pl.Datetime("us"),
}


@dataclass
class StoredBars:
    """What is stored around a batch, read before the fetch (each part optional).

    Attributes:
        previous: last stored bar per ticker before the window (``ticker, date, close,
            adj_close``): the first bar's return and gap.
        window: stored bars dated in the window (OHLCV columns): restatements, and context for
            jumps and gaps where the batch has no bar.
        following: first stored bar per ticker after the window (``ticker, date, close,
            adj_close, volume``): decides the window's last jump when re-running old windows.
        held: bars held as ``unconfirmed_jump`` by earlier runs that still wait for their next
            bar (OHLCV columns, ``quarantine_id``, ``held_at``): judged again with this batch.
    """

    previous: pl.DataFrame | None = None
    window: pl.DataFrame | None = None
    following: pl.DataFrame | None = None
    held: pl.DataFrame | None = None
