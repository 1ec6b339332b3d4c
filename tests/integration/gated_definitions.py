"""The shipped market assets and executor, with a gate a test can hold a step at.

``$PM_TEST_GATE`` names a folder and ``$PM_TEST_GATE_PHASE`` where the step stops:
``fetch`` (inside the source's fetch, the warehouse closed) or ``write`` (inside the write
transaction, after the bars were upserted and before the commit). The step writes
``<gate>/<phase>`` when it gets there, then waits until ``<gate>/release`` exists. Without
``$PM_TEST_GATE`` nothing waits. Used as a code location by the daemon and CLI tests:
``-m tests.integration.gated_definitions``.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import polars as pl

from model_code.market_data.sources.base import SourceBatch
from model_code.market_data.sources.fallback import FallbackChain
from model_code.market_data.universe import Universe
from model_code.warehouse import Warehouse
from pm_assets.market import market_assets
from pm_jobs import recovering_in_process_executor
from pm_resources import MarketDataResource, WarehouseResource, build_resources


def wait_at_gate(phase: str) -> None:
    """Stop here when the environment's gate is set for ``phase``, until it is released."""
    gate = os.environ.get("PM_TEST_GATE")
    if not gate or os.environ.get("PM_TEST_GATE_PHASE", "fetch") != phase:
        return
    folder = Path(gate)
    (folder / phase).write_text(str(os.getpid()))
    while not (folder / "release").exists():
        time.sleep(0.02)


class _GatedSource:
    """Delegates to a real source after the fetch gate (a slow network, made controllable)."""

    def __init__(self, inner) -> None:
        self.inner, self.name = inner, inner.name

    def fetch(self, tickers: Sequence[str], start: dt.date, end: dt.date) -> SourceBatch:
        wait_at_gate("fetch")
        return self.inner.fetch(tickers, start, end)

    def list_tickers(self) -> list[str] | None:
        return self.inner.list_tickers()


class GatedMarketData(MarketDataResource):
    def chain(self, universe: Universe) -> FallbackChain:
        real = super().chain(universe)
        return FallbackChain([_GatedSource(s) for s in real.sources], real.pinned)


class _GatedWarehouse(Warehouse):
    def upsert(self, table: str, frame: pl.DataFrame, keys, *, keep_known: bool = False) -> int:
        written = super().upsert(table, frame, keys, keep_known=keep_known)
        if table == "market.ohlcv" and self._depth:
            wait_at_gate("write")  # mid-transaction: bars upserted, nothing committed
        return written


class GatedWarehouseResource(WarehouseResource):
    @contextmanager
    def open(self) -> Iterator[Warehouse]:
        with super().open() as wh:
            gated = _GatedWarehouse(wh.conn)
            yield gated


def _resources() -> dict:
    shipped = build_resources()
    return {
        "warehouse": GatedWarehouseResource(database=shipped["warehouse"].database),
        "market_data": GatedMarketData(fallback_order=["bundled"]),
    }


ohlcv_job = dg.define_asset_job("ohlcv_job", selection=[dg.AssetKey(["market", "ohlcv"])])

defs = dg.Definitions(
    assets=market_assets,
    jobs=[ohlcv_job],
    resources=_resources(),
    executor=recovering_in_process_executor,
)
