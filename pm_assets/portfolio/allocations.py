"""Asset `portfolio/allocations`: target weights per session under hard risk limits."""

import datetime as dt

import dagster as dg
import polars as pl
from pydantic import Field

from model_code.allocation import METHODS, AllocationSettings, RiskLimits
from model_code.allocation.sessions import HIT_WINDOW, allocate_sessions
from model_code.forecasting.sessions import loss_window_start
from model_code.market_data.calendar import trading_calendar
from model_code.reporting.plots import bar_chart
from pm_assets.market.ohlcv import MAX_PARTITIONS_PER_RUN
from pm_assets.metadata import floats, image, per_partition, table
from pm_assets.partitions import partition_dates, trading_days
from pm_resources import DUCKDB_POOL, WarehouseResource

_SETTINGS = AllocationSettings()
_LIMITS = RiskLimits()
TRACK_SESSIONS = 756  # about three years of the allocations' own record for the drawdown


class AllocationConfig(dg.Config):
    """Method and limits (defaults: `model_code.allocation.settings`)."""

    method: str = Field(default="kelly", description=f"One of {METHODS}.")
    kelly_fraction: float = Field(default=_SETTINGS.kelly_fraction, description="Share of full Kelly, < 1.")
    lookback: int = Field(default=_SETTINGS.lookback, description="Sessions of returns the estimators see.")
    max_position: float = Field(
        default=_LIMITS.max_position, description="Largest weight outside the safe sleeve."
    )
    max_gross: float = Field(default=_LIMITS.max_gross, description="Gross exposure cap.")
    min_confidence: float = Field(
        default=_LIMITS.min_confidence, description="No position below this confidence."
    )
    kill_switch_drawdown: float = Field(
        default=_LIMITS.kill_switch_drawdown, description="Drawdown that flattens the book until reset."
    )
    kill_switch_reset: str | None = Field(
        default=None,
        description="YYYY-MM-DD a person reset the kill switch; drawdowns before it do not count.",
    )
    min_hit_rate: float = Field(
        default=_LIMITS.min_hit_rate, description="Rolling hit rate below which trading stops."
    )

    def settings(self) -> AllocationSettings:
        limits = RiskLimits(
            max_position=self.max_position,
            max_gross=self.max_gross,
            min_confidence=self.min_confidence,
            kill_switch_drawdown=self.kill_switch_drawdown,
            min_hit_rate=self.min_hit_rate,
        )
        return AllocationSettings(limits=limits, lookback=self.lookback, kelly_fraction=self.kelly_fraction)


@dg.asset(
    key=["portfolio", "allocations"],
    deps=[
        dg.AssetKey(["signals", "daily"]),
        dg.AssetKey(["market", "ohlcv"]),
        dg.AssetKey(["features", "targets"]),
    ],
    group_name="portfolio",
    kinds={"duckdb", "skfolio"},
    owners=["team:research"],
    partitions_def=trading_days,
    backfill_policy=dg.BackfillPolicy.multi_run(max_partitions_per_run=MAX_PARTITIONS_PER_RUN),
    pool=DUCKDB_POOL,
)
def allocations(
    context: dg.AssetExecutionContext, config: AllocationConfig, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """Target weights at each session's close in `portfolio.allocations` (one row per signal
    ticker plus `CASH`; weights sum to 1), long only, by the configured method (fractional
    Kelly by default; barbell, risk parity, HRP, inverse volatility, 1/N), then the hard limits:
    10 % a position, the gross cap, no position below the minimum confidence, the drawdown kill
    switch (flat until reset) and the hit-rate emergency stop. Read the metadata: the cash
    weight, how many rows each limit bound (`bound_<limit>`, `binding_limits_plot`), which
    method produced the weights, and the last session's weights (`weights_plot`,
    `weights_latest`). In a ranged run each partition shows its own session's cash and positions.
    """
    if config.method not in METHODS:
        raise dg.Failure(f"method must be one of {METHODS}, got {config.method!r}")
    settings = config.settings()
    start, end = partition_dates(context)
    calendar = trading_calendar()
    sessions = calendar.session_dates(start, end)
    history_start = loss_window_start(start, max(settings.lookback, TRACK_SESSIONS) + 2, calendar)
    hit_start = loss_window_start(start, HIT_WINDOW + 1, calendar)
    all_sessions = calendar.session_dates(hit_start, end)
    with warehouse.open() as wh:
        signals = wh.query("@signals_between", [hit_start, end])
        bars = wh.query("@ohlcv_history_until", [end]).filter(pl.col("date") >= history_start)
        targets = wh.query("@targets_between", [hit_start, end])
        stored = wh.query("@allocations_between", [history_start, start - dt.timedelta(days=1)])
    reset = dt.date.fromisoformat(config.kill_switch_reset) if config.kill_switch_reset else None
    made = allocate_sessions(
        sessions,
        signals,
        bars,
        targets,
        stored,
        method=config.method,  # type: ignore[arg-type]
        settings=settings,
        calendar_sessions=all_sessions,
        kill_switch_reset=reset,
    )
    stamp = dt.datetime.now(dt.UTC)
    with warehouse.open() as wh, wh.transaction():
        written = wh.upsert(
            "portfolio.allocations",
            made.with_columns(computed_at=pl.lit(stamp, dtype=pl.Datetime("us", "UTC"))),
            ["as_of", "ticker"],
        )
    last = made.filter(pl.col("as_of") == made["as_of"].max()) if made.height else made
    binding = made.filter(pl.col("binding_limit") != "none").group_by("binding_limit").len()
    used = made.group_by("method_used").len()
    per_partition(context, made, "as_of", _session_metrics)
    metadata = {
        "rows_written": dg.MetadataValue.float(float(written)),
        "sessions": dg.MetadataValue.float(float(len(sessions))),
        **floats(_session_metrics(last)),
        **{f"bound_{b}": dg.MetadataValue.float(float(n)) for b, n in binding.iter_rows()},
        **{f"method_used_{m}": dg.MetadataValue.float(float(n)) for m, n in used.iter_rows()},
    }
    if last.height:
        held = last.filter(pl.col("weight") > 0).sort("weight", descending=True)
        metadata["weights_latest"] = table(
            held.select("as_of", "ticker", "weight", "sleeve", "method_used", "binding_limit"), limit=30
        )
        metadata["weights_plot"] = image(
            bar_chart(
                held["ticker"].head(25).to_list(),
                held["weight"].head(25).to_list(),
                title=f"target weights at the close of {last['as_of'][0]}",
                xlabel="weight",
            ),
            "allocation weights",
        )
    if binding.height:
        ranked = binding.rename({"len": "rows"}).sort("rows", descending=True)
        metadata["binding_limits"] = table(ranked)
        metadata["binding_limits_plot"] = image(
            bar_chart(
                ranked["binding_limit"].to_list(), ranked["rows"].to_list(), title="rows each limit bound"
            ),
            "binding limits",
        )
    if made.is_empty():
        metadata["why_empty"] = dg.MetadataValue.text(
            f"no allocation for {start}..{end}: no stored signal or bar for these sessions"
        )
    return dg.MaterializeResult(metadata=metadata)


def _session_metrics(rows: pl.DataFrame) -> dict[str, float]:
    """Cash weight and open positions of one session's rows (all cash when there are none)."""
    invested = rows.filter((pl.col("ticker") != "CASH") & (pl.col("weight") > 0))
    return {
        "cash_weight_latest": float(rows.filter(pl.col("ticker") == "CASH")["weight"].sum())
        if rows.height
        else 1.0,
        "positions_latest": float(invested.height),
        "rows_bound_latest": float(rows.filter(pl.col("binding_limit") != "none").height),
    }
