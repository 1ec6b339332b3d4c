"""Asset `market/universe`: the tickers the platform tracks (configuration made visible)."""

import datetime as dt

import dagster as dg
import polars as pl

from pm_assets.metadata import table
from pm_resources import DUCKDB_POOL, MarketDataResource, WarehouseResource


@dg.asset(
    key=["market", "universe"],
    group_name="market",
    kinds={"duckdb", "python"},
    owners=["team:data-platform"],
    pool=DUCKDB_POOL,
)
def universe(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, market_data: MarketDataResource
) -> dg.MaterializeResult:
    """The tracked tickers and, where configured, the source each is pinned to.

    Read from the universe YAML (or, by default, every ticker of the bundled offline data) and
    stored in `market.universe`. Tickers removed from the configuration stay with
    `active = false` so their stored history keeps its meaning. Metadata: the active and
    inactive counts and the first 50 tickers with their pinned source.
    """
    members = market_data.universe().members
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    frame = pl.DataFrame(
        {
            "ticker": [m.ticker for m in members],
            "pinned_source": [m.source for m in members],
            "active": [True] * len(members),
            "updated_at": [now] * len(members),
        },
        schema={
            "ticker": pl.String,
            "pinned_source": pl.String,
            "active": pl.Boolean,
            "updated_at": pl.Datetime("us"),
        },
    )
    with warehouse.open() as wh, wh.transaction():
        wh.execute(
            "UPDATE market.universe SET active = false, updated_at = ? "
            "WHERE active AND NOT list_contains(?, ticker)",
            [now, frame["ticker"].to_list()],
        )
        wh.upsert("market.universe", frame, ["ticker"])
        inactive = wh.count("market.universe") - frame.height
    context.log.info("universe: %d active tickers, %d inactive", frame.height, inactive)
    return dg.MaterializeResult(
        metadata={
            "active_tickers": dg.MetadataValue.float(float(frame.height)),
            "inactive_tickers": dg.MetadataValue.float(float(inactive)),
            "tickers": dg.MetadataValue.md(_ticker_table(members)),
            "universe": table(
                frame.select("ticker", pl.col("pinned_source").fill_null("fallback order"), "active"),
                limit=50,
            ),
        }
    )


def _ticker_table(members) -> str:
    rows = "\n".join(f"| {m.ticker} | {m.source or 'fallback order'} |" for m in members)
    return "| ticker | source |\n| --- | --- |\n" + rows
