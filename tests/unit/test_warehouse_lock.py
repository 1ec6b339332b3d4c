"""The warehouse waits, boundedly, while another process holds the DuckDB file."""

import time

import dagster as dg
import duckdb
import pytest

from model_code.warehouse import WarehouseLocked, connect
from pm_resources import WarehouseResource
from tests.processes import holding_duckdb


def test_connect_fails_after_the_timeout_naming_the_holding_process(tmp_path):
    path = tmp_path / "held.duckdb"
    waits: list[str] = []
    with holding_duckdb(path) as holder:
        began = time.monotonic()
        with pytest.raises(WarehouseLocked) as err:
            connect(str(path), timeout=1.0, on_wait=waits.append)
        waited = time.monotonic() - began
    assert err.value.pid == holder.pid
    message = str(err.value)
    assert f"PID {holder.pid}" in message and "python" in message  # the holder's command line
    assert "con.close()" in message and "lock_timeout_seconds" in message
    assert 1.0 <= waited < 10.0
    assert len(waits) == 1 and f"PID {holder.pid}" in waits[0]


def test_connect_succeeds_once_the_holder_lets_go(tmp_path):
    path = tmp_path / "held.duckdb"
    with holding_duckdb(path, seconds=1.5):
        conn = connect(str(path), timeout=30.0)
    try:
        # what the other process wrote is there: we waited for it rather than failing
        assert conn.execute("SELECT x FROM notebook_scratch").fetchall() == [(1,)]
    finally:
        conn.close()


def test_connect_raises_other_errors_at_once(tmp_path):
    began = time.monotonic()
    with pytest.raises(duckdb.Error):
        connect(str(tmp_path / "missing" / "folder" / "x.duckdb"), read_only=True, timeout=30.0)
    assert time.monotonic() - began < 5.0


@dg.asset
def _count_bars(warehouse: WarehouseResource) -> dg.MaterializeResult:
    with warehouse.open() as wh:
        return dg.MaterializeResult(metadata={"bars": float(wh.count("market.ohlcv"))})


def test_an_asset_run_fails_with_the_named_holder_instead_of_a_raw_lock_error(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    with holding_duckdb(path) as holder:
        result = dg.materialize(
            [_count_bars],
            resources={"warehouse": WarehouseResource(database=str(path), lock_timeout_seconds=1.0)},
            raise_on_error=False,
        )
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    text = str(failure.step_failure_data.error)
    assert "WarehouseLocked" in text and f"PID {holder.pid}" in text


def test_an_asset_run_waits_for_a_short_hold_and_succeeds(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    with holding_duckdb(path, seconds=1.5):
        result = dg.materialize(
            [_count_bars],
            resources={"warehouse": WarehouseResource(database=str(path), lock_timeout_seconds=30.0)},
        )
    assert result.success
