"""Asset ``market/ohlcv``: validated daily bars per trading day, with its asset checks.

One step ingests a whole partition range, and tickers are rows inside it. A backfill is cut
into runs of at most half a trading year (``BackfillPolicy.multi_run(126)``): not one run per
day, and not one run for decades, because Dagster writes an event per partition and, for
each asset check, a planned-evaluation row per partition that carries the whole range, so a
run's bookkeeping grows with the square of its length (measured here: 1 year in one run
28 s, 5 years 128 s, 7 years > 9 min, while the ingestion itself takes about a second).
See docs/architecture.md.
"""

import dagster as dg

from model_code.market_data.calendar import trading_calendar
from model_code.market_data.ingestion import IngestionReport, fetch_window, store_window
from model_code.market_data.universe import parse_universe
from model_code.validation import ValidationRules, stale_tickers, validate_ohlcv
from model_code.validation.window_checks import CHECKS, window_verdicts
from pm_assets.partitions import partition_dates, trading_days
from pm_resources import DUCKDB_POOL, MarketDataResource, WarehouseResource

OHLCV = dg.AssetKey(["market", "ohlcv"])
MAX_PARTITIONS_PER_RUN = 126  # about half an NYSE year


class OhlcvConfig(dg.Config):
    """Validation thresholds (units in each field's description)."""

    min_price: float = ValidationRules.min_price
    jump_log_return: float = ValidationRules.jump_log_return
    stale_after_sessions: int = 5
    max_quarantine_fraction: float = 0.02


@dg.asset(
    key=OHLCV,
    deps=[dg.AssetKey(["market", "universe"])],
    group_name="market",
    kinds={"duckdb", "polars"},
    owners=["team:data-platform"],
    check_specs=[
        dg.AssetCheckSpec(c.name, asset=OHLCV, description=c.description, blocking=c.blocking) for c in CHECKS
    ],
    partitions_def=trading_days,
    backfill_policy=dg.BackfillPolicy.multi_run(max_partitions_per_run=MAX_PARTITIONS_PER_RUN),
    pool=DUCKDB_POOL,
)
def ohlcv(
    context: dg.AssetExecutionContext,
    config: OhlcvConfig,
    warehouse: WarehouseResource,
    market_data: MarketDataResource,
):
    """Validated daily bars in ``market.ohlcv`` (ticker, date, OHLC, adj_close, volume, source).

    Fetches the tickers stored by ``market/universe`` (its active rows and their pins) from the
    configured sources (per ticker the first that answers wins) with the warehouse closed,
    moves rejected rows to ``market.quarantine`` with a reason, records series findings in
    ``market.data_quality``, upserts the rest, and checks the stored window.
    """
    start, end = partition_dates(context)
    rules = ValidationRules(min_price=config.min_price, jump_log_return=config.jump_log_return)
    calendar = trading_calendar()
    with warehouse.open() as wh:
        # Read the upstream asset rather than re-reading the configuration, so the lineage
        # edge is real: what was materialized as the universe is what gets ingested.
        members = wh.query(
            "SELECT ticker, pinned_source AS source FROM market.universe WHERE active ORDER BY ticker"
        )
        previous = wh.query("@ohlcv_last_bar_before", [start])
    if members.is_empty():
        raise dg.Failure(
            description="market.universe has no active ticker: materialize market/universe first"
        )
    universe = parse_universe(members.to_dicts(), origin="market.universe")
    # Network and validation run with the file closed, so readers are never locked out meanwhile.
    fetched = fetch_window(market_data.chain(universe), universe.tickers, start, end)
    if fetched.bars.height == 0 and fetched.source_errors:
        # Nothing arrived because sources failed (not because they had no data): fail the run
        # so the operator sees it; nothing was written.
        errors = "; ".join(f"{name}: {msg}" for name, msg in fetched.source_errors.items())
        raise dg.Failure(description=f"no bars for {start}..{end}; source errors: {errors}")
    result = validate_ohlcv(fetched.bars, rules=rules, calendar=calendar, previous=previous)
    with warehouse.open() as wh:
        report = store_window(
            wh, fetched, result, start, end, tickers_requested=len(universe.tickers), calendar=calendar
        )
        stored = wh.query("@ohlcv_window_violations", [start, end, config.min_price]).row(0, named=True)
        last = dict(wh.query("@ohlcv_last_dates", [end]).iter_rows())
    stale = stale_tickers(last, end, max_sessions=config.stale_after_sessions)
    verdicts = window_verdicts(
        report,
        stored,
        stale,
        max_quarantine_fraction=config.max_quarantine_fraction,
        stale_after_sessions=config.stale_after_sessions,
        as_of=end,
    )
    context.log.info(
        "ohlcv %s..%s: %d received, %d written, %d quarantined, %d tickers failed",
        start,
        end,
        report.rows_received,
        report.rows_written,
        report.rows_quarantined,
        len(report.failures),
    )
    return dg.MaterializeResult(
        metadata=_ohlcv_metadata(report, stored),
        check_results=[
            dg.AssetCheckResult(
                check_name=v.name,
                passed=v.passed,
                severity=dg.AssetCheckSeverity.ERROR if v.blocking else dg.AssetCheckSeverity.WARN,
                metadata={k: _metadata_value(x) for k, x in v.metadata.items()},
            )
            for v in verdicts
        ],
    )


def _metadata_value(x: float | int | str) -> dg.MetadataValue:
    return dg.MetadataValue.text(x) if isinstance(x, str) else dg.MetadataValue.float(float(x))


def _ohlcv_metadata(report: IngestionReport, stored: dict) -> dict[str, dg.MetadataValue]:
    counts = report.validation.quarantine_counts() if report.validation else {}
    table = "| reason | rows |\n| --- | --- |\n" + "\n".join(f"| {r} | {n} |" for r, n in counts.items() if n)
    by_source: dict[str, int] = {}
    for source in report.served_by.values():
        by_source[source] = by_source.get(source, 0) + 1
    return {
        "rows_received": dg.MetadataValue.float(float(report.rows_received)),
        "rows_written": dg.MetadataValue.float(float(report.rows_written)),
        "rows_quarantined": dg.MetadataValue.float(float(report.rows_quarantined)),
        "rows_in_window": dg.MetadataValue.float(float(stored["n_rows"])),
        "tickers": dg.MetadataValue.float(float(stored["n_tickers"])),
        "tickers_failed": dg.MetadataValue.float(float(len(report.failures))),
        "window_start": dg.MetadataValue.text(report.start.isoformat()),
        "window_end": dg.MetadataValue.text(report.end.isoformat()),
        "tickers_by_source": dg.MetadataValue.json(by_source),
        "quarantine_fraction": dg.MetadataValue.float(report.quarantine_fraction),
        "quarantined_by_reason": dg.MetadataValue.md(table),
    }
