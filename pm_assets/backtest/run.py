"""Asset ``backtest/run``: every stored allocation replayed with costs, beside its baselines."""

import datetime as dt
import json
import math
import subprocess
from pathlib import Path

import dagster as dg
import polars as pl
from pydantic import Field

from model_code.backtest.runs import (
    BASELINES,
    NothingToBacktest,
    backtest_allocations,
    capacity_frame,
    config_hash,
    headline,
    markdown,
    regime_frame,
    regime_labels,
)
from model_code.costs import TradingCosts
from model_code.execution import ExecutionConfig
from model_code.reports.tearsheet import backtest_figure, load_backtest_rows, write_backtest_tearsheet
from pm_assets.metadata import image, table
from pm_resources import DUCKDB_POOL, WarehouseResource

FIRST = dt.date(1990, 1, 1)
LAST = dt.date(9999, 12, 31)
_COSTS = TradingCosts()
_EXECUTION = ExecutionConfig()


class BacktestConfig(dg.Config):
    """Execution settings (defaults: ``model_code.execution.ExecutionConfig``)."""

    commission_bps: float = Field(default=_COSTS.commission_bps, description="Per side, bps.")
    slippage_bps: float = Field(default=_COSTS.slippage_bps, description="Per side, bps.")
    impact_k: float = Field(
        default=_EXECUTION.impact_k, description="Square-root impact coefficient (0: off)."
    )
    participation_cap: float = Field(default=0.10, description="Largest fill as a fraction of ADV.")
    initial_cash: float = Field(default=1_000_000.0, description="Starting equity (currency).")

    def execution(self) -> ExecutionConfig:
        costs = TradingCosts(commission_bps=self.commission_bps, slippage_bps=self.slippage_bps)
        return ExecutionConfig(costs=costs, impact_k=self.impact_k, participation_cap=self.participation_cap)


def _git_sha() -> str:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return done.stdout.strip() if done.returncode == 0 else "unknown"


@dg.asset(
    key=["backtest", "run"],
    deps=[dg.AssetKey(["portfolio", "allocations"]), dg.AssetKey(["market", "ohlcv"])],
    group_name="backtest",
    kinds={"duckdb", "numpy"},
    owners=["team:research"],
    pool=DUCKDB_POOL,
)
def backtest_run(
    context: dg.AssetExecutionContext, config: BacktestConfig, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """Every stored allocation replayed from its first decision to the last bar: fills at the
    next bar (open, or close for close-only tickers), 5 + 5 bps a side, the 10 %-of-ADV cap,
    beside the equal-weight universe, inverse volatility and buy-and-hold, in `backtest.equity`
    and `backtest.metrics` (CAGR, Sharpe, drawdown, PSR, DSR over every configuration ever run
    in `backtest.trials`, ...), with per-regime Sharpes in `backtest.regimes` and the AUM
    capacity (k = 1 and 0.5) in `backtest.capacity`, all in one transaction. Metadata: each
    strategy's Sharpe, CAGR, max drawdown and DSR, the strategy's capacity and worst regime
    Sharpe, both tables in markdown, the tickers without volume data (traded without the
    participation cap), `metrics` (a table: the strategy and each baseline), `equity_plot` (equity
    and drawdown against the baselines) and `tearsheet`, the run's offline HTML report under
    `$PM_HOME/reports/backtest/`.
    """
    with warehouse.open() as wh:
        allocations = wh.query("@allocations_between", [FIRST, LAST])
        bars = wh.query("@ohlcv_history_until", [LAST])
        trials = wh.query("SELECT config_hash, sharpe_per_period FROM backtest.trials")
    first = str(allocations["as_of"].min()) if allocations.height else None
    settings = {**config.model_dump(), "allocations_from": first}
    key = config_hash(settings)
    others = [s for h, s in trials.iter_rows() if h != key and s is not None]
    try:
        run = backtest_allocations(
            allocations,
            bars,
            config=config.execution(),
            initial_cash=config.initial_cash,
            trial_sharpes=others,
        )
    except NothingToBacktest as exc:
        context.log.info(str(exc))
        # What is stored so far, so the empty result shows how far the record is from scoring.
        stored = (
            allocations.group_by("as_of").agg(pl.len().alias("rows"), pl.col("weight").sum().alias("weight"))
            if allocations.height
            else pl.DataFrame(schema={"as_of": pl.Date, "rows": pl.UInt32, "weight": pl.Float64})
        ).sort("as_of")
        return dg.MaterializeResult(
            metadata={
                "why_empty": dg.MetadataValue.text(str(exc)),
                "sessions": dg.MetadataValue.float(float(stored.height)),
                "stored_allocations": table(stored),
            }
        )
    labels, skipped = regime_labels(run, bars)
    regimes = regime_frame(run, labels)
    capacities = capacity_frame(run, config.execution())
    now = dt.datetime.now(dt.UTC)
    run_id = context.run.run_id
    strategy = run.metrics.filter(pl.col("strategy") == "strategy").row(0, named=True)
    stamp = pl.lit(now, dtype=pl.Datetime("us", "UTC"))
    with warehouse.open() as wh, wh.transaction():
        wh.upsert(
            "backtest.runs",
            pl.DataFrame(
                {
                    "run_id": [run_id],
                    "config_hash": [key],
                    "config": [json.dumps(settings, sort_keys=True)],
                    "data_start": [run.panel.dates[run.first]],
                    "data_end": [run.panel.dates[-1]],
                    "git_sha": [_git_sha()],
                    "tickers": [len(run.panel.tickers)],
                }
            ).with_columns(created_at=stamp),
            ["run_id"],
        )
        wh.upsert(
            "backtest.equity",
            run.equity_frame().with_columns(run_id=pl.lit(run_id)),
            ["run_id", "strategy", "date"],
        )
        wh.upsert("backtest.metrics", run.metrics.with_columns(run_id=pl.lit(run_id)), ["run_id", "strategy"])
        if regimes.height:
            wh.upsert(
                "backtest.regimes",
                regimes.with_columns(run_id=pl.lit(run_id)),
                ["run_id", "strategy", "regime_kind", "regime"],
            )
        wh.upsert(
            "backtest.capacity", capacities.with_columns(run_id=pl.lit(run_id)), ["run_id", "strategy", "k"]
        )
        wh.upsert(
            "backtest.trials",
            pl.DataFrame(
                {
                    "config_hash": [key],
                    "config": [json.dumps(settings, sort_keys=True)],
                    "first_run_id": [run_id],
                    "sharpe_per_period": [strategy["sharpe_per_period"]],
                    "n_periods": [strategy["n_periods"]],
                }
            ).with_columns(created_at=stamp),
            ["config_hash"],
        )
    with warehouse.open() as wh:  # the tearsheet shows what was stored, read back
        stored = load_backtest_rows(wh, run_id)
    metadata: dict[str, dg.MetadataValue] = {
        "tearsheet": dg.MetadataValue.path(str(write_backtest_tearsheet(stored))),
        "equity_plot": image(backtest_figure(stored, small=True), "equity and drawdown vs the baselines"),
        "sessions": dg.MetadataValue.float(float(strategy["n_periods"])),
        "trials": dg.MetadataValue.float(float(strategy["n_trials"] or 0)),
    }
    for row in run.metrics.iter_rows(named=True):
        for metric in ("sharpe", "cagr", "max_drawdown", "dsr"):
            if row[metric] is not None and math.isfinite(row[metric]):
                metadata[f"{metric}_{row['strategy']}"] = dg.MetadataValue.float(float(row[metric]))
    for name, value in headline(regimes, capacities).items():
        metadata[name] = dg.MetadataValue.float(value)
    shown = regimes.select(
        "strategy",
        "regime_kind",
        "regime",
        "n",
        "sharpe",
        "sharpe_se",
        "sharpe_annualized",
        "is_worst",
        "heterogeneity_p",
    )
    metadata["regimes"] = dg.MetadataValue.md(markdown(shown) if shown.height else "no regime scored")
    metadata["capacity"] = dg.MetadataValue.md(
        markdown(
            capacities.select(
                "strategy",
                "k",
                "aum_edge_vanishes",
                "aum_sharpe_halves",
                "aum_participation_binds",
                "capacity",
            )
        )
    )
    if skipped:
        metadata["regimes_skipped"] = dg.MetadataValue.text("; ".join(skipped.values()))
    metadata["metrics"] = table(
        run.metrics.select(
            "strategy", "cagr", "volatility", "sharpe", "max_drawdown", "psr", "dsr", "n_trials"
        )
    )
    metadata["baselines"] = dg.MetadataValue.text(", ".join(BASELINES))
    metadata["tickers_without_volume"] = dg.MetadataValue.float(float(len(run.without_volume)))
    if run.without_volume:
        metadata["uncapped_tickers"] = dg.MetadataValue.text(
            "no volume data, traded without the participation cap: " + ", ".join(run.without_volume[:40])
        )
    return dg.MaterializeResult(metadata=metadata)
