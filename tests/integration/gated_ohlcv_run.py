"""Run ``market/ohlcv`` for one partition in its own process, held at a gate.

Used by ``test_warehouse_free_during_compute.py`` (see ``gated_definitions`` for the gate).

Usage: PM_TEST_GATE=DIR python -m tests.integration.gated_ohlcv_run DB PARTITION
"""

from __future__ import annotations

import sys

import dagster as dg

from pm_assets.market import ohlcv
from tests.integration.gated_definitions import GatedMarketData, GatedWarehouseResource


def main(db: str, partition: str) -> int:
    result = dg.materialize(
        [ohlcv],
        resources={"warehouse": GatedWarehouseResource(database=db), "market_data": GatedMarketData()},
        partition_key=partition,
        raise_on_error=False,
    )
    return 0 if result.success else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
