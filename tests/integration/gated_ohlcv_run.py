"""Run ``market/ohlcv`` for one partition in its own process, held inside its fetch.

Used by ``test_warehouse_free_during_compute.py``: the source writes ``<gate>/fetching`` when
the asset starts fetching and waits for ``<gate>/release`` before answering, so a test can read
the DuckDB file from another process meanwhile, or SIGKILL this one mid-step.

Usage: python -m tests.integration.gated_ohlcv_run DB GATE PARTITION
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import dagster as dg

from model_code.market_data.sources.base import SourceBatch
from model_code.market_data.sources.fallback import FallbackChain
from model_code.market_data.universe import Universe
from pm_assets.market import ohlcv
from pm_resources import MarketDataResource, WarehouseResource


class _GatedSource:
    """Delegates to a real source after the gate opens (a slow network, made controllable)."""

    def __init__(self, inner, gate: Path) -> None:
        self.inner, self.gate, self.name = inner, gate, inner.name

    def fetch(self, tickers: Sequence[str], start: dt.date, end: dt.date) -> SourceBatch:
        (self.gate / "fetching").write_text(str(time.time()))
        while not (self.gate / "release").exists():
            time.sleep(0.05)
        return self.inner.fetch(tickers, start, end)

    def list_tickers(self) -> list[str] | None:
        return self.inner.list_tickers()


class GatedMarketData(MarketDataResource):
    gate_dir: str

    def chain(self, universe: Universe) -> FallbackChain:
        real = super().chain(universe)
        return FallbackChain([_GatedSource(s, Path(self.gate_dir)) for s in real.sources], real.pinned)


def main(db: str, gate: str, partition: str) -> int:
    result = dg.materialize(
        [ohlcv],
        resources={
            "warehouse": WarehouseResource(database=db),
            "market_data": GatedMarketData(gate_dir=gate),
        },
        partition_key=partition,
        raise_on_error=False,
    )
    return 0 if result.success else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
