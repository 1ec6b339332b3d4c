"""Asset `market/ohlcv`: validated daily bars per trading day, with its asset checks.

One step ingests a whole partition range, and tickers are rows inside it. A backfill is cut
into runs of at most half a trading year (`BackfillPolicy.multi_run(126)`): not one run per
day, and not one run for decades, because Dagster writes an event per partition and, for
each asset check, a planned-evaluation row per partition that carries the whole range, so a
run's bookkeeping grows with the square of its length (measured here: 1 year in one run
28 s, 5 years 128 s, 7 years > 9 min, while the ingestion itself takes about a second).
See docs/architecture.md.

Because of that policy, `dagster asset materialize --partition-range` refuses this asset
(Dagster's CLI runs ranges only for `single_run()` assets). From the command line, run a
range cut the way a backfill cuts it::

    python -m pm_jobs.backfill 2018-12-17 2018-12-31 --select market/universe market/ohlcv

(`tests/integration/test_backfill_cli.py`), or one range in one run with `dagster job
execute -j nightly_job --tags '{"dagster/asset_partition_range_start": ..., "..._end": ...}'`
(`tests/integration/test_ohlcv_cli.py`); or a backfill from the UI.
"""

from typing import Literal

import dagster as dg
import polars as pl
from pydantic import Field

from model_code.market_data.calendar import trading_calendar
from model_code.market_data.ingestion import (
    IngestionReport,
    fetch_window,
    read_stored,
    store_window,
    validate_window,
    window_report,
)
from model_code.market_data.universe import parse_universe
from model_code.reporting.plots import bar_chart, line_chart
from model_code.validation import ValidationRules, stale_tickers
from model_code.validation.window_checks import CHECKS, window_verdicts
from pm_assets.metadata import image, per_partition, table
from pm_assets.partitions import partition_dates, trading_days
from pm_resources import DUCKDB_POOL, MarketDataResource, WarehouseResource

OHLCV = dg.AssetKey(["market", "ohlcv"])
MAX_PARTITIONS_PER_RUN = 126  # about half an NYSE year


class OhlcvConfig(dg.Config):
    """Validation thresholds and policies (units in each field's description)."""

    min_price: float = Field(default=ValidationRules.min_price, description="Lowest credible price, USD.")
    jump_log_return: float = Field(
        default=ValidationRules.jump_log_return,
        description="|daily log return| beyond which a move is a jump (held until the next bar decides).",
    )
    stale_after_sessions: int = Field(
        default=5, description="Sessions without a bar before a ticker is stale."
    )
    max_quarantine_fraction: float = Field(
        default=0.02,
        description="Largest share of received rows quarantined before the blocking check fails.",
    )
    restatement_policy: Literal["replace", "quarantine"] = Field(
        default=ValidationRules.restatement_policy,
        description="A stored bar re-delivered with other values: replace it (recorded in "
        "market.ohlcv_revisions) or quarantine the new one as restated_bar.",
    )
    on_outage: Literal["fail", "error_check"] = Field(
        default="fail",
        description="No bar arrived because the sources failed or were down: fail the run, or "
        "succeed with the ohlcv_sources_available check failed (ERROR) and nothing materialized, "
        "so downstream steps skip.",
    )


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
    output_required=False,  # an outage under on_outage=error_check materializes nothing
    backfill_policy=dg.BackfillPolicy.multi_run(max_partitions_per_run=MAX_PARTITIONS_PER_RUN),
    pool=DUCKDB_POOL,
)
def ohlcv(
    context: dg.AssetExecutionContext,
    config: OhlcvConfig,
    warehouse: WarehouseResource,
    market_data: MarketDataResource,
):
    """Validated daily bars in `market.ohlcv` (ticker, date, OHLC, adj_close, volume, source).

    Reads what is stored around the window (its bars, the bars before and after it, jumps held
    by earlier runs), then, with the warehouse closed, fetches the tickers stored by
    `market/universe` (its active rows and their pins) from the configured sources (per
    ticker the first that answers wins) and validates them; then, in one transaction, moves
    rejected rows to `market.quarantine` with a reason (jumps still waiting for their next
    bar as `unconfirmed_jump`), records restatements in `market.ohlcv_revisions` and
    findings in `market.data_quality`, upserts the rest, and checks the stored window. An
    outage (no bar because every source failed) fails the run, or with
    `on_outage=error_check` materializes nothing and fails `ohlcv_sources_available`.

    Read the metadata: the row counts (received = accepted + quarantined + held + outside the
    window), `coverage_plot` / `coverage_by_session` (tickers stored per session against the
    universe), `quarantine_plot` (quarantined rows by reason) and `tickers_failed_names`.
    In a ranged run each partition shows its own session's rows, tickers and coverage.
    """
    start, end = partition_dates(context)
    rules = ValidationRules(
        min_price=config.min_price,
        jump_log_return=config.jump_log_return,
        restatement_policy=config.restatement_policy,
    )
    calendar = trading_calendar()
    with warehouse.open() as wh:
        # Read the upstream asset rather than re-reading the configuration, so the lineage
        # edge is real: what was materialized as the universe is what gets ingested.
        members = wh.query(
            "SELECT ticker, pinned_source AS source FROM market.universe WHERE active ORDER BY ticker"
        )
        around = read_stored(wh, start, end)  # bars around the window, and held jumps
    if members.is_empty():
        raise dg.Failure(
            description="market.universe has no active ticker: materialize market/universe first"
        )
    universe = parse_universe(members.to_dicts(), origin="market.universe")
    # Network and validation run with the file closed, so readers are never locked out meanwhile.
    fetched = fetch_window(market_data.chain(universe), universe.tickers, start, end)
    outage = fetched.outage()
    if outage and config.on_outage == "fail":
        # Nothing arrived because sources failed or were down (not because they had no data):
        # fail the run so the operator sees it; nothing was written.
        errors = "; ".join(f"{name}: {msg}" for name, msg in sorted(outage.items()))
        raise dg.Failure(
            description=f"no bars for {start}..{end}: every source asked failed; last errors: {errors}",
            metadata={
                "sources_failed": float(len(outage)),
                "tickers_requested": float(len(universe.tickers)),
            },
        )
    validated = validate_window(fetched, around, start, end, rules=rules, calendar=calendar)
    requested = len(universe.tickers)
    with warehouse.open() as wh:
        if outage:
            # on_outage=error_check: store nothing and do not materialize the window (downstream
            # steps skip instead of computing on a night without bars); the checks say why.
            report = window_report(
                fetched, validated, start, end, tickers_requested=requested, rows_written=0
            )
        else:
            report = store_window(
                wh, fetched, validated, start, end, tickers_requested=requested, calendar=calendar
            )
        stored = wh.query("@ohlcv_window_violations", [start, end, config.min_price]).row(0, named=True)
        last = dict(wh.query("@ohlcv_last_dates", [end]).iter_rows())
        coverage = wh.query(
            "SELECT date, count(*) AS bars, count(DISTINCT ticker) AS tickers FROM market.ohlcv "
            "WHERE date BETWEEN ? AND ? GROUP BY date ORDER BY date",
            [start, end],
        )
        quarantined = wh.query(
            "SELECT date, reason, count(*) AS n FROM market.quarantine "
            "WHERE date BETWEEN ? AND ? GROUP BY date, reason ORDER BY date, reason",
            [start, end],
        )
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
        "ohlcv %s..%s: %d received = %d stored + %d quarantined + %d held + %d outside the window; "
        "%d earlier held released, %d rejected; %d restated; %d tickers failed",
        start,
        end,
        report.rows_received,
        report.rows_accepted,
        report.rows_quarantined,
        report.rows_held,
        report.rows_outside_window,
        report.held_released,
        report.held_rejected,
        report.bars_restated,
        len(report.failures),
    )
    checks = [
        dg.AssetCheckResult(
            check_name=v.name,
            passed=v.passed,
            severity=dg.AssetCheckSeverity.ERROR if v.severity == "error" else dg.AssetCheckSeverity.WARN,
            metadata={k: _metadata_value(x) for k, x in v.metadata.items()},
        )
        for v in verdicts
    ]
    if outage:
        yield from checks
        return
    per_partition(
        context,
        coverage.join(
            quarantined.group_by("date").agg(quarantined=pl.col("n").sum()),
            on="date",
            how="full",
            coalesce=True,
        ),
        "date",
        lambda day: {
            "rows_in_window": day["bars"].sum(),
            "tickers": day["tickers"].max() or 0,
            "coverage": (day["tickers"].max() or 0) / requested if requested else None,
            "quarantined_stored": day["quarantined"].sum(),  # in market.quarantine, held jumps included
        },
    )
    metadata = _ohlcv_metadata(report, stored) | _coverage_metadata(coverage, quarantined, requested)
    yield dg.MaterializeResult(metadata=metadata, check_results=checks)


def _coverage_metadata(
    coverage: pl.DataFrame, quarantined: pl.DataFrame, requested: int
) -> dict[str, dg.MetadataValue]:
    """Stored tickers per session (share of the universe) and quarantined rows by reason."""
    out: dict[str, dg.MetadataValue] = {
        "coverage_mean": dg.MetadataValue.float(
            float(coverage["tickers"].mean() or 0.0) / requested if requested else float("nan")
        ),
        "coverage_by_session": table(
            coverage.with_columns(coverage=pl.col("tickers") / max(requested, 1)).sort(
                "date", descending=True
            )
        ),
    }
    by_reason = quarantined.group_by("reason").agg(pl.col("n").sum()).sort("n", descending=True)
    if by_reason.height:
        out["quarantine_by_reason_table"] = table(by_reason)
    if coverage.height > 1:
        out["coverage_plot"] = image(
            line_chart(
                coverage["date"].to_list(),
                {"tickers stored": coverage["tickers"].to_list()},
                title=f"tickers stored per session (universe {requested})",
                reference=float(requested),
            ),
            "ohlcv coverage",
        )
    if by_reason.height:
        out["quarantine_plot"] = image(
            bar_chart(
                by_reason["reason"].to_list(), by_reason["n"].to_list(), title="quarantined rows by reason"
            ),
            "quarantine by reason",
        )
    return out


def _metadata_value(x: float | int | str) -> dg.MetadataValue:
    return dg.MetadataValue.text(x) if isinstance(x, str) else dg.MetadataValue.float(float(x))


def _ohlcv_metadata(report: IngestionReport, stored: dict) -> dict[str, dg.MetadataValue]:
    reasons = report.validation.quarantine_counts() if report.validation else {}
    reason_rows = [f"| {r} | {n} |" for r, n in reasons.items() if n]
    by_source: dict[str, int] = {}
    for source in report.served_by.values():
        by_source[source] = by_source.get(source, 0) + 1
    counts = {
        # rows_received = rows_accepted + rows_quarantined + rows_held + rows_outside_window
        "rows_received": report.rows_received,
        "rows_accepted": report.rows_accepted,
        "rows_quarantined": report.rows_quarantined,
        "rows_held": report.rows_held,
        "rows_outside_window": report.rows_outside_window,
        "rows_written": report.rows_written,  # accepted + held_released
        "held_released": report.held_released,
        "held_rejected": report.held_rejected,
        "bars_restated": report.bars_restated,
    }
    return {
        **{k: dg.MetadataValue.float(float(v)) for k, v in counts.items()},
        "rows_in_window": dg.MetadataValue.float(float(stored["n_rows"])),
        "tickers": dg.MetadataValue.float(float(stored["n_tickers"])),
        "tickers_failed": dg.MetadataValue.float(float(len(report.failures))),
        "files_unreadable": dg.MetadataValue.float(float(sum(map(len, report.unreadable_files.values())))),
        "unreadable_files": dg.MetadataValue.json(report.unreadable_files),
        "tickers_failed_names": dg.MetadataValue.text(", ".join(sorted(report.failures)[:50]) or "none"),
        "failed_tickers": dg.MetadataValue.md(
            "\n".join(f"* **{t}**: {'; '.join(r)}" for t, r in sorted(report.failures.items())[:50]) or "none"
        ),
        "window_start": dg.MetadataValue.text(report.start.isoformat()),
        "window_end": dg.MetadataValue.text(report.end.isoformat()),
        "tickers_by_source": dg.MetadataValue.json(by_source),
        "quarantine_fraction": dg.MetadataValue.float(report.quarantine_fraction),
        **(
            {
                "quarantined_by_reason": dg.MetadataValue.md(
                    "| reason | rows |\n| --- | --- |\n" + "\n".join(reason_rows)
                )
            }
            if reason_rows
            else {}
        ),
    }
