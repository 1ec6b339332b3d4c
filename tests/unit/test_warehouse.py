import datetime as dt

import polars as pl
import pytest

from model_code.warehouse import WarehouseError, apply_ddl

NOW = dt.datetime(2024, 1, 2, 12, 0)


def _bars(closes: list[float], ticker: str = "AAA") -> pl.DataFrame:
    days = [dt.date(2019, 1, 2) + dt.timedelta(days=i) for i in range(len(closes))]
    return pl.DataFrame(
        {
            "ticker": [ticker] * len(closes),
            "date": days,
            "close": closes,
            "source": ["t"] * len(closes),
            "ingested_at": [NOW] * len(closes),
        }
    )


def test_ddl_is_idempotent_and_creates_every_layer(warehouse):
    apply_ddl(warehouse.conn)
    schemas = set(warehouse.query("SELECT schema_name FROM information_schema.schemata")["schema_name"])
    assert {
        "market",
        "features",
        "forecasts",
        "models",
        "signals",
        "portfolio",
        "backtest",
        "paper",
        "monitoring",
    } <= schemas


def test_upsert_twice_writes_no_duplicates_and_updates_values(warehouse):
    warehouse.upsert("market.ohlcv", _bars([1.0, 2.0, 3.0]), ["ticker", "date"])
    warehouse.upsert("market.ohlcv", _bars([1.0, 2.5, 3.0]), ["ticker", "date"])
    stored = warehouse.query("SELECT close FROM market.ohlcv ORDER BY date")
    assert stored["close"].to_list() == [1.0, 2.5, 3.0]


def test_a_failing_batch_changes_nothing(warehouse):
    warehouse.upsert("market.ohlcv", _bars([1.0, 2.0]), ["ticker", "date"])
    bad = pl.concat([_bars([9.0], ticker="BBB"), _bars([5.0, None])])  # NULL close violates NOT NULL
    with pytest.raises(WarehouseError, match="market.ohlcv: upsert of 3 rows failed"):
        warehouse.upsert("market.ohlcv", bad, ["ticker", "date"])
    assert warehouse.query("SELECT ticker, close FROM market.ohlcv ORDER BY date").rows() == [
        ("AAA", 1.0),
        ("AAA", 2.0),
    ]


def test_transaction_rolls_back_every_write_inside_it(warehouse):
    with pytest.raises(WarehouseError), warehouse.transaction():
        warehouse.upsert("market.ohlcv", _bars([1.0]), ["ticker", "date"])
        warehouse.upsert("market.ohlcv", _bars([None]), ["ticker", "date"])
    assert warehouse.count("market.ohlcv") == 0


def test_batch_with_repeated_keys_is_refused_before_writing(warehouse):
    doubled = pl.concat([_bars([1.0]), _bars([2.0])])
    with pytest.raises(WarehouseError, match="appear more than once"):
        warehouse.upsert("market.ohlcv", doubled, ["ticker", "date"])
    assert warehouse.count("market.ohlcv") == 0


def test_named_queries_are_read_from_sql_folder(warehouse):
    warehouse.upsert("market.ohlcv", _bars([1.0, 2.0, 3.0]), ["ticker", "date"])
    last = warehouse.query("@ohlcv_last_bar_before", [dt.date(2019, 1, 4)])
    assert last.rows() == [("AAA", dt.date(2019, 1, 3), 2.0, None)]


def test_keep_known_never_replaces_a_stored_value_with_null(warehouse):
    warehouse.upsert("market.ohlcv", _bars([1.0]).with_columns(adj_close=pl.lit(0.9)), ["ticker", "date"])
    later = _bars([1.1]).with_columns(adj_close=pl.lit(None, dtype=pl.Float64))
    warehouse.upsert("market.ohlcv", later, ["ticker", "date"], keep_known=True)
    assert warehouse.query("SELECT close, adj_close FROM market.ohlcv").rows() == [(1.1, 0.9)]
    warehouse.upsert("market.ohlcv", later, ["ticker", "date"])
    assert warehouse.query("SELECT close, adj_close FROM market.ohlcv").rows() == [(1.1, None)]
