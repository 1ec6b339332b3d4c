"""Asset `signals/daily`: one signal per ticker and session, with its source, confidence and reason."""

import dataclasses
import datetime as dt

import dagster as dg
import polars as pl
from pydantic import Field

from model_code.costs import TradingCosts
from model_code.forecasting.sessions import loss_window_start
from model_code.governance_store import (
    ROUTER,
    LoggedDecision,
    log_decisions,
    no_champion_reason,
    primary_of,
    router_primary,
)
from model_code.market_data.calendar import trading_calendar
from model_code.ml.lifecycle import MODEL_NAMES
from model_code.ml.registry import ModelRegistry
from model_code.reporting.plots import grouped_bar_chart
from model_code.signals.config import load_llm_settings, load_router_defaults
from model_code.signals.daily import (
    DEFAULT_CALIBRATION_LOOKBACK,
    LlmAsker,
    llm_answer_calls,
    signals_for_sessions,
)
from model_code.signals.llm import LLM_CALLS_KEY
from model_code.signals.persistence import DEFAULT_MAX_FLIP_RATE, DEFAULT_WINDOW, over_trading
from model_code.signals.primary import decide_primary
from model_code.signals.router import RouterSettings
from pm_assets.market.ohlcv import MAX_PARTITIONS_PER_RUN
from pm_assets.metadata import image, per_partition, table
from pm_assets.partitions import partition_dates, trading_days
from pm_resources import DUCKDB_POOL, OllamaResource, WarehouseResource

SIGNALS = dg.AssetKey(["signals", "daily"])
_DEFAULTS = RouterSettings()
_COSTS = TradingCosts()
_LLM = load_llm_settings()
_FILE = load_router_defaults()


class SignalConfig(dg.Config):
    """Router flags and thresholds; defaults from `config/signals.yaml` (`router:`, `llm:`)."""

    ts: bool = Field(
        default=_FILE.get("ts", _DEFAULTS.enabled["ts"]), description="Use the time-series ensemble."
    )
    ml: bool = Field(default=_FILE.get("ml", _DEFAULTS.enabled["ml"]), description="Use the ML champion.")
    llm: bool = Field(
        default=_LLM.enabled, description="Ask the LLM as the last resort (config/signals.yaml llm.enabled)."
    )
    llm_max_tickers: int = Field(default=_LLM.max_tickers, description="Tickers a run may send to the LLM.")
    llm_knowledge_cutoff: str = Field(
        default=_LLM.knowledge_cutoff.isoformat(),
        description="The LLM is not asked for sessions on or before this date (its weights know what followed).",
    )
    primary: str = Field(
        default=_FILE.get("primary", _DEFAULTS.primary),
        description=(
            "ts, ml or governance: who is asked first (governance: ml only while it clears the "
            "promotion gate against ts on their realized forecasts; decisions in models.decisions)."
        ),
    )
    min_confidence: float = Field(
        default=_FILE.get("min_confidence", _DEFAULTS.min_confidence),
        description="Calibrated P(direction right) needed to trade.",
    )
    horizon: int = Field(
        default=_FILE.get("horizon", _DEFAULTS.horizon), description="Trading horizon in sessions."
    )
    commission_bps: float = Field(
        default=_FILE.get("commission_bps", _COSTS.commission_bps), description="Cost per side, bps."
    )
    slippage_bps: float = Field(
        default=_FILE.get("slippage_bps", _COSTS.slippage_bps), description="Slippage per side, bps."
    )
    ml_model: str = Field(
        default=_FILE.get("ml_model", "lgbm"), description="The ML family whose champion is the ml source."
    )
    calibration_lookback: int = Field(
        default=_FILE.get("calibration_lookback", DEFAULT_CALIBRATION_LOOKBACK),
        description="Sessions of realized calls each calibration uses.",
    )
    persistence_window: int = Field(
        default=DEFAULT_WINDOW, description="Sessions the over-trading check reads."
    )
    max_flip_rate: float = Field(default=DEFAULT_MAX_FLIP_RATE, description="Flip share that warns.")

    def settings(self) -> RouterSettings:
        return RouterSettings(
            enabled={"ts": self.ts, "ml": self.ml, "llm": self.llm},
            primary=self.primary,  # type: ignore[arg-type]
            min_confidence=self.min_confidence,
            horizon=self.horizon,
            costs=TradingCosts(commission_bps=self.commission_bps, slippage_bps=self.slippage_bps),
            llm_max_tickers=self.llm_max_tickers,
        )


@dg.asset(
    key=SIGNALS,
    deps=[
        dg.AssetKey(["forecasts", "predictions"]),
        dg.AssetKey(["ml", "predictions"]),
        dg.AssetKey(["features", "targets"]),
    ],
    group_name="signals",
    kinds={"duckdb", "polars"},
    owners=["team:research"],
    partitions_def=trading_days,
    backfill_policy=dg.BackfillPolicy.multi_run(max_partitions_per_run=MAX_PARTITIONS_PER_RUN),
    pool=DUCKDB_POOL,
    check_specs=[
        dg.AssetCheckSpec(
            "signal_persistence",
            asset=SIGNALS,
            description="Warns when a ticker's action flips on more than max_flip_rate of its last sessions.",
        )
    ],
)
def daily_signals(
    context: dg.AssetExecutionContext,
    config: SignalConfig,
    warehouse: WarehouseResource,
    ollama: OllamaResource,
) -> dg.MaterializeResult:
    """BUY / SELL / HOLD per ticker and session in `signals.daily`, for `horizon` sessions.

    The time-series ensemble is asked first, the ML champion second (or first with
    `primary: ml`); a source gives a view when its calibrated confidence (the out-of-sample
    probability that its direction is right, learned only from its own calls realized by the
    session) reaches `min_confidence` and its edge beats the round-trip cost. Every row stores
    the source, the confidence, the reason, and the path: why each earlier source declined.
    With `primary: governance` the run first decides, at the close of its first session, whether
    ML or ts is primary (`model_code/signals/primary.py`: the governance gate on their realized
    forecasts, ML the challenger), logs it to `models.decisions` (family `router`) and routes
    every session of the run by it. When the ML family has no champion, the path says why
    (`ml: no champion (governance ...)`).
    Read the metadata: `signals_<action>_<source>` counts (charted across runs), `counts_plot`
    and `counts_by_source` (signals by action and source over the window), the router
    decision, and the over-trading check. In a ranged run each partition shows its own counts.
    """
    settings = config.settings()
    cutoff = dt.date.fromisoformat(config.llm_knowledge_cutoff)
    start, end = partition_dates(context)
    calendar = trading_calendar()
    sessions = calendar.session_dates(start, end)
    since = loss_window_start(start, config.calibration_lookback + 1, calendar)
    recent = loss_window_start(start, config.persistence_window, calendar)
    with warehouse.open() as wh:
        inputs = wh.query("@signal_inputs", [since, end, settings.horizon, config.ml_model])
        targets = wh.query("@targets_between", [since, end])
        bars = wh.query("SELECT date, ticker FROM market.ohlcv WHERE date BETWEEN ? AND ?", [start, end])
        earlier = wh.query("@signals_between", [recent, start - dt.timedelta(days=1)])
        answers = wh.query(
            "SELECT as_of, ticker, action, stated_confidence FROM signals.llm_calls "
            "WHERE action IS NOT NULL AND as_of BETWEEN ? AND ? AND as_of > ?",
            [since, end, cutoff],
        )
        decided_at = dt.datetime.combine(start, dt.time.min)
        previous = router_primary(wh, settings.horizon, decided_at - dt.timedelta(microseconds=1))
        family = next((f for f, name in MODEL_NAMES.items() if name == config.ml_model), config.ml_model)
        ml_missing = (
            no_champion_reason(wh, family, settings.horizon)
            if config.ml and ModelRegistry(wh).champion(family, settings.horizon) is None
            else None
        )
    if ml_missing is not None:
        settings = dataclasses.replace(settings, unavailable={"ml": ml_missing[:240]})
    logged = None
    governance_primary = None
    if settings.primary == "governance":
        decision, judged = decide_primary(
            inputs,
            targets,
            settings.horizon,
            start,
            ml_is_primary=previous is not None and previous[0] == "ml",
        )
        governance_primary = primary_of(decision.action, decision.subject, decision.rival)
        logged = LoggedDecision(decision, ROUTER, settings.horizon, decided_at, judged["window_end"], judged)
        context.log.info(
            "signals/daily: router primary %s (%s: %s)", governance_primary, decision.action, decision.reason
        )
    tickers = {d: g["ticker"].to_list() for (d,), g in bars.group_by("date")}
    # The LLM is asked with the warehouse closed, inside one budget for the whole run.
    asker = None
    if config.llm:
        budget = ollama.new_budget()
        asker = LlmAsker(
            lambda prompt: ollama.ask(prompt, budget),
            horizon=settings.horizon,
            run_id=context.run.run_id,
            anonymize=_LLM.anonymize,
        )
    signals = signals_for_sessions(
        sessions,
        tickers,
        inputs,
        targets,
        settings,
        calibration_lookback=config.calibration_lookback,
        extra_calls={"llm": llm_answer_calls(answers, targets, settings.horizon)},
        llm=asker,
        llm_cutoff=cutoff,
        governance_primary=governance_primary,
    )
    llm_calls = asker.calls() if asker else None
    stamp = dt.datetime.now(dt.UTC)
    with warehouse.open() as wh, wh.transaction():
        if llm_calls is not None:
            wh.upsert("signals.llm_calls", llm_calls, list(LLM_CALLS_KEY))
        if logged is not None:
            log_decisions(wh, [logged])
        written = wh.upsert(
            "signals.daily",
            signals.with_columns(computed_at=pl.lit(stamp, dtype=pl.Datetime("us", "UTC"))),
            ["as_of", "ticker"],
        )
    flipping = over_trading(
        pl.concat([earlier.select(signals.columns), signals], how="vertical_relaxed"),
        window=config.persistence_window,
        max_flip_rate=config.max_flip_rate,
    )
    counts = signals.group_by("action", "source").len()
    metadata: dict[str, dg.MetadataValue] = {
        "rows_written": dg.MetadataValue.float(float(written)),
        "sessions": dg.MetadataValue.float(float(len(sessions))),
        **{f"signals_{a.lower()}_{s}": dg.MetadataValue.float(float(n)) for a, s, n in counts.iter_rows()},
        "llm_calls": dg.MetadataValue.float(float(llm_calls.height if llm_calls is not None else 0)),
        "llm_calls_ok": dg.MetadataValue.float(
            float((llm_calls["outcome"] == "ok").sum()) if llm_calls is not None else 0.0
        ),
        "mean_confidence_trades": dg.MetadataValue.float(
            float(signals.filter(pl.col("action") != "HOLD")["confidence"].mean() or 0.0)
        ),
    }
    if logged is not None:
        ev = logged.decision.evidence
        metadata["router_primary"] = dg.MetadataValue.text(str(governance_primary))
        metadata["router_decision"] = dg.MetadataValue.text(
            f"{logged.decision.action}: {logged.decision.reason}"
        )
        metadata["router_dm_p"] = dg.MetadataValue.float(float(ev.get("dm_p_one_sided", float("nan"))))
        metadata["router_ml_dsr"] = dg.MetadataValue.float(float(logged.context.get("ml_dsr", float("nan"))))
    if signals.height:
        metadata["latest"] = dg.MetadataValue.md(
            _table(signals.filter(pl.col("as_of") == signals["as_of"].max()))
        )
        metadata |= _count_metadata(counts)
    else:
        metadata["why_empty"] = dg.MetadataValue.text(
            f"no stored bar dated {start}..{end}, so no ticker to signal"
            if bars.is_empty()
            else "no signal was produced for the window's bars (see the run log)"
        )
    per_partition(
        context,
        signals,
        "as_of",
        lambda day: {
            "rows_written": day.height,
            **{f"{a.lower()}_signals": (day["action"] == a).sum() if day.height else 0 for a in ACTIONS},
        },
    )
    return dg.MaterializeResult(
        metadata=metadata,
        check_results=[
            dg.AssetCheckResult(
                check_name="signal_persistence",
                passed=flipping.is_empty(),
                severity=dg.AssetCheckSeverity.WARN,
                metadata={
                    "over_trading_tickers": dg.MetadataValue.float(float(flipping.height)),
                    "tickers": dg.MetadataValue.text(", ".join(flipping["ticker"].to_list()[:50]) or "none"),
                    "window_sessions": dg.MetadataValue.float(float(config.persistence_window)),
                },
            )
        ],
    )


ACTIONS = ("BUY", "SELL", "HOLD")


def _count_metadata(counts: pl.DataFrame) -> dict[str, dg.MetadataValue]:
    """Signals by action and source over the window: a typed table and a grouped bar chart."""
    sources = sorted(counts["source"].unique().to_list())
    grid = {
        s: [
            float(counts.filter((pl.col("action") == a) & (pl.col("source") == s))["len"].sum())
            for a in ACTIONS
        ]
        for s in sources
    }
    return {
        "counts_by_source": table(counts.rename({"len": "signals"}).sort("action", "source")),
        "counts_plot": image(
            grouped_bar_chart(list(ACTIONS), grid, title="signals by action and source", ylabel="signals"),
            "signal counts by source",
        ),
    }


def _table(day: pl.DataFrame) -> str:
    counts = day.group_by("action", "source").len().sort("action", "source")
    rows = "\n".join(f"| {a} | {s} | {n} |" for a, s, n in counts.iter_rows())
    return "| action | source | signals |\n| --- | --- | --- |\n" + rows
