"""Backtest report: every allocation method on every signal source, after costs, beside baselines.

    python -m model_code.backtest.report --parquet ../shared/data/us_equities_daily_2015_2019.parquet \
        --walk-forward rows.parquet --start 2018-01-02 --end 2019-12-31 --out docs/results/backtest.md

Inputs are those of :mod:`model_code.signals.report` (all out of sample, point in time): the
walk-forward ensemble's 5-session forecasts (``ts``, monthly origins) and LightGBM retrained at
each month's first session on what was known at that close (``ml``, every session). Signals come
from :func:`~model_code.signals.daily.signals_for_sessions` with the router restricted to one
source (``ts``, ``ml``) or with its defaults (``routed``: TS first, ML second, LLM off).

Each (method, source) pair is allocated by :func:`~model_code.allocation.allocate.allocate` on
the rebalance sessions, the risk state built as :mod:`model_code.allocation.sessions` builds it
(shadow drawdown of the allocations held since the first one, the kill switch latched for the
rest of the run, the rolling hit rate of the source's signals over the last 63 sessions); the
barbell reads the forward-filtered calm-state probability of a 2-state HMM fitted on the
market before the test window. Rebalancing is every ``rebalance_every`` sessions, counted from
each month's first session (the TS origins), and holds in between; a source without a view on a
rebalance session holds nothing until the next one. Qlib's TopkDropout rule runs daily on the ML
scores. Every strategy and the baselines (1/N of the universe, inverse volatility, buy-and-hold)
go through :func:`~model_code.backtest.engine.run_backtest` with next-bar fills, the 10 %-of-ADV
participation cap and ``bps`` per side for each cost level, on split-adjusted prices with
warm-up sessions for the ADV.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import math
import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from model_code.allocation.allocate import ALLOCATION_SCHEMA, CASH, allocate
from model_code.allocation.history import returns_matrix
from model_code.allocation.limits import EMERGENCY_STOP, KILL_SWITCH
from model_code.allocation.sessions import HIT_WINDOW, rolling_hit_rate, shadow_drawdowns
from model_code.allocation.settings import AllocationSettings
from model_code.allocation.state import AllocationState
from model_code.backtest.engine import BacktestResult, run_backtest
from model_code.backtest.metrics import metrics_table, sharpe_ratio
from model_code.backtest.overfitting import probability_of_backtest_overfitting
from model_code.backtest.runs import (
    VOL_WINDOW,
    BacktestRun,
    Panel,
    baseline_weights,
    calm_probability,
    capacity_frame,
    price_panel,
    regime_frame,
    regime_labels,
    strategy_weights,
    traded_volume,
)
from model_code.backtest.topk import topk_dropout_weights
from model_code.costs import TradingCosts
from model_code.execution import ExecutionConfig
from model_code.forecasting.returns import daily_log_returns
from model_code.market_data.calendar import TradingCalendar, trading_calendar
from model_code.signals.daily import signals_for_sessions
from model_code.signals.router import RouterSettings

METHODS = ("kelly", "barbell", "risk_parity", "hrp", "inverse_vol", "equal_weight")
SOURCES = ("ts", "ml", "routed")
BASELINES = ("equal_weight_universe", "inverse_vol_universe", "buy_and_hold")
_BASELINE_KIND = {
    "equal_weight_universe": "equal_weight",
    "inverse_vol_universe": "inverse_vol",
    "buy_and_hold": "buy_and_hold",
}
QLIB_TOPK = (50, 5)
# Qlib's own result on these data (quoted, not recomputed here).
QLIB_FIGURE = {"topk_dropout": -0.026, "equal_weight_universe": 0.091}
LEAKAGE_HIT_RATE = 0.55
MONTHLY = 23  # a rebalance spacing this long (sessions) leaves only each month's first session


def router_for(source: str) -> RouterSettings:
    """``ts`` / ``ml``: the router with only that source on; ``routed``: its defaults."""
    if source == "routed":
        return RouterSettings()
    if source not in ("ts", "ml"):
        raise ValueError(f"unknown source {source!r}; known: {SOURCES}")
    return RouterSettings(enabled={"ts": source == "ts", "ml": source == "ml", "llm": False})


def rebalance_sessions(sessions: Sequence[dt.date], every: int) -> list[dt.date]:
    """Each month's first session, then every ``every``-th session of the month after it."""
    if every < 1:
        raise ValueError(f"every must be >= 1, got {every}")
    out, month, k = [], None, 0
    for d in sorted(sessions):
        if (d.year, d.month) != month:
            month, k = (d.year, d.month), 0
        if k % every == 0:
            out.append(d)
        k += 1
    return out


def cost_config(bps: float) -> ExecutionConfig:
    """``bps`` per side, split evenly between commission and slippage (the default is 5 + 5)."""
    return ExecutionConfig(costs=TradingCosts(commission_bps=bps / 2, slippage_bps=bps / 2))


@dataclass(frozen=True)
class ReportSettings:
    start: dt.date
    end: dt.date
    methods: tuple[str, ...] = METHODS
    sources: tuple[str, ...] = SOURCES
    rebalance_every: int = 5
    costs_bps: tuple[float, ...] = (0.0, 5.0, 10.0, 25.0)
    main_bps: float = 10.0
    topk: tuple[tuple[int, int], ...] = (QLIB_TOPK, (20, 2), (100, 10))
    allocation: AllocationSettings = field(default_factory=AllocationSettings)
    pbo_blocks: int = 16
    # per-period Sharpes of trials run outside this call (another rebalance spacing), counted in N
    extra_trials: tuple[float, ...] = ()


@dataclass
class Report:
    settings: ReportSettings
    panel: Panel
    first: int
    rebalances: list[dt.date]
    allocations: dict[str, pl.DataFrame]
    results: dict[float, dict[str, BacktestResult]]
    metrics: pl.DataFrame
    trial_sharpes: list[float]
    pbo: float
    pbo_configs: int
    pbo_combinations: int
    capacity: pl.DataFrame
    regimes: pl.DataFrame
    regimes_skipped: dict[str, str]
    halts: dict[str, dict[str, int]]
    fallbacks: dict[str, int]
    signal_counts: dict[str, dict[str, int]]
    without_volume: tuple[str, ...]
    seconds: dict[str, float]

    def returns(self, name: str, bps: float | None = None) -> np.ndarray:
        r = self.results[self.settings.main_bps if bps is None else bps][name]
        return r.returns[self.first :]

    @property
    def strategies(self) -> list[str]:
        return [n for n in self.results[self.settings.main_bps] if n not in BASELINES]


def strategy_name(method: str, source: str) -> str:
    return f"{method}/{source}"


def topk_name(topk: int, n_drop: int) -> str:
    return f"topk{topk}_drop{n_drop}/ml"


def allocate_run(
    rebalances: Sequence[dt.date],
    signals: pl.DataFrame,
    returns_history: pl.DataFrame,
    track_bars: pl.DataFrame,
    hit_rates: dict[dt.date, float | None],
    calm: dict[dt.date, float],
    sessions: Sequence[dt.date],
    *,
    method: str,
    settings: AllocationSettings,
) -> pl.DataFrame:
    """Allocations at each rebalance session; the shadow track holds each allocation on every
    session until the next one (as the daily asset would have stored it)."""
    held = pl.DataFrame(schema=ALLOCATION_SCHEMA)
    out: list[pl.DataFrame] = []
    engaged = False
    sessions = sorted(sessions)
    for k, as_of in enumerate(rebalances):
        if out:
            prev = out[-1]
            gap = [s for s in sessions if rebalances[k - 1] < s < as_of]
            if gap:
                held = pl.concat([held, *[prev.with_columns(as_of=pl.lit(s, dtype=pl.Date)) for s in gap]])
        drawdown = 0.0
        if held.height:
            names = held.filter(pl.col("ticker") != CASH)["ticker"].unique().to_list()
            track = shadow_drawdowns(
                held, track_bars.filter(pl.col("ticker").is_in(names) & (pl.col("date") <= as_of)), None
            )
            if track.height:
                drawdown = float(track["drawdown"][-1])
                engaged = engaged or float(track["drawdown"].max()) >= settings.limits.kill_switch_drawdown
        state = AllocationState(
            drawdown=min(max(drawdown, 0.0), 1.0),
            kill_switch_engaged=engaged,
            rolling_hit_rate=hit_rates.get(as_of),
            regime_confidence=calm.get(as_of),
        )
        previous = None
        if out:
            previous = {t: w for t, w in zip(out[-1]["ticker"], out[-1]["weight"], strict=True) if t != CASH}
        day = allocate(
            as_of,
            signals.filter(pl.col("as_of") == as_of),
            returns_history.filter(pl.col("date") <= as_of),
            method=method,  # type: ignore[arg-type]
            settings=settings,
            previous_weights=previous or None,
            state=state,
        )
        out.append(day)
        held = pl.concat([held, day])
    return pl.concat(out) if out else pl.DataFrame(schema=ALLOCATION_SCHEMA)


def ml_score_panel(inputs: pl.DataFrame, panel: Panel) -> np.ndarray:
    """The ML forecasts (``yhat`` at each origin) as a date x ticker panel (NaN: no forecast)."""
    ml = inputs.filter(pl.col("source") == "ml").select(pl.col("origin").alias("date"), "ticker", "yhat")
    out = np.full(panel.close.shape, np.nan)
    row = {d: i for i, d in enumerate(panel.dates)}
    col = {t: j for j, t in enumerate(panel.tickers)}
    for d, t, y in ml.iter_rows():
        if d in row and t in col and y is not None:
            out[row[d], col[t]] = y
    return out


def _cached(
    cache: Path | None, key: str, make: Callable[[], pl.DataFrame], credit: dict[str, float], stage: str
) -> pl.DataFrame:
    """``make()``, or its frame kept in ``cache`` by an earlier run; the seconds it took when it
    was computed are added to ``credit[stage]`` when it is read back, so the report can state
    the cold runtime of every stage."""
    if cache is None:
        return make()
    path, clock = cache / f"{key}.parquet", cache / f"{key}.seconds"
    if path.exists():
        credit[stage] = credit.get(stage, 0.0) + (float(clock.read_text()) if clock.exists() else 0.0)
        return pl.read_parquet(path)
    began = time.perf_counter()
    frame = make()
    cache.mkdir(parents=True, exist_ok=True)
    frame.write_parquet(path)
    clock.write_text(f"{time.perf_counter() - began:.3f}")
    return frame


def run_report(
    bars: pl.DataFrame,
    inputs: pl.DataFrame,
    targets: pl.DataFrame,
    settings: ReportSettings,
    *,
    calendar: TradingCalendar | None = None,
    log: Callable[[str], None] = print,
    cache: Path | None = None,
    credit: dict[str, float] | None = None,
) -> Report:
    """Signals, allocations, backtests and their scores for ``settings.start..end``.

    ``cache``: a folder where each source's signals and each allocation run are kept as Parquet
    (named by the window and the rebalance spacing) and read back on a later call; None: none.
    ``credit``: collects, per stage, the seconds the cached pieces took when they were computed.
    """
    credit = {} if credit is None else credit
    calendar = calendar or trading_calendar()
    seconds: dict[str, float] = {}
    clock = time.perf_counter()
    start, end = settings.start, settings.end
    bar_dates = set(bars["date"].unique().to_list())
    sessions = [d for d in calendar.session_dates(start, end) if d in bar_dates]
    rebalances = rebalance_sessions(sessions, settings.rebalance_every)
    # the hit-rate window before the first rebalance sees signals on the same schedule
    before = [d for d in calendar.session_dates(start - dt.timedelta(days=140), start) if d < start]
    before = before[-HIT_WINDOW:]
    signal_days = rebalance_sessions(before, settings.rebalance_every) + rebalances
    all_sessions = before + sessions
    tickers = {
        d: g["ticker"].to_list()
        for (d,), g in bars.filter(pl.col("date").is_in(signal_days)).group_by("date")
    }
    targets_window = targets.filter(pl.col("date").is_between(before[0] if before else start, end))

    signals: dict[str, pl.DataFrame] = {}
    hit_rates: dict[str, dict[dt.date, float | None]] = {}
    signal_counts: dict[str, dict[str, int]] = {}
    for source in settings.sources:
        sig = _cached(
            cache,
            f"signals_{source}_{start}_{end}_{settings.rebalance_every}",
            lambda source=source: signals_for_sessions(
                signal_days, tickers, inputs, targets, router_for(source), calendar=calendar
            ),
            credit,
            "signals",
        )
        signals[source] = sig
        in_test = sig.filter(pl.col("as_of") >= start)
        signal_counts[source] = dict(in_test.group_by("action").len().iter_rows())
        rates = {}
        for d in rebalances:
            i = all_sessions.index(d)
            rates[d] = rolling_hit_rate(sig, targets_window, d, all_sessions[max(0, i - HIT_WINDOW) : i])
        hit_rates[source] = rates
        log(f"  signals {source}: {in_test.height:,} on {len(rebalances)} rebalance sessions")
    seconds["signals"] = time.perf_counter() - clock + credit.get("signals", 0.0)

    clock = time.perf_counter()
    returns = returns_matrix(daily_log_returns(bars, end))
    calm = calm_probability(bars, start)
    track_bars = bars.filter(pl.col("date") >= (before[-1] if before else start)).select(
        "ticker", "date", "close", "adj_close"
    )
    allocations: dict[str, pl.DataFrame] = {}
    halts: dict[str, dict[str, int]] = {}
    fallbacks: dict[str, int] = {}
    for source in settings.sources:
        for method in settings.methods:
            name = strategy_name(method, source)
            began = time.perf_counter()
            made = _cached(
                cache,
                f"alloc_{method}_{source}_{start}_{end}_{settings.rebalance_every}",
                lambda method=method, source=source: allocate_run(
                    rebalances,
                    signals[source],
                    returns,
                    track_bars,
                    hit_rates[source],
                    calm,
                    sessions,
                    method=method,
                    settings=settings.allocation,
                ),
                credit,
                "allocations",
            )
            allocations[name] = made
            cash_rows = made.filter(pl.col("ticker") == CASH)
            halts[name] = {
                h: int((cash_rows["binding_limit"] == h).sum()) for h in (KILL_SWITCH, EMERGENCY_STOP)
            }
            fallbacks[name] = int(cash_rows["fallback_reason"].is_not_null().sum())
            log(f"  allocate {name}: {time.perf_counter() - began:.1f}s")
    seconds["allocations"] = time.perf_counter() - clock + credit.get("allocations", 0.0)

    clock = time.perf_counter()
    earlier = sorted(d for d in bar_dates if d < start)[-(ExecutionConfig().window + VOL_WINDOW) :]
    panel = price_panel(bars, earlier[0] if earlier else start, end)
    first = panel.dates.index(sessions[0])
    weights: dict[str, np.ndarray] = {}
    for name, made in allocations.items():
        weights[name] = strategy_weights(made, panel)
    scores = ml_score_panel(inputs, panel)
    tradable = np.isfinite(panel.close)
    for k, drop in settings.topk:
        w = np.full(panel.close.shape, np.nan)
        w[first:] = topk_dropout_weights(scores[first:], topk=k, n_drop=drop, tradable=tradable[first:])
        weights[topk_name(k, drop)] = w
    for name, kind in _BASELINE_KIND.items():
        weights[name] = baseline_weights(kind, panel)
    for w in weights.values():
        w[:first] = np.nan
    has = tradable[first]
    weights["buy_and_hold"][first] = np.where(has, 1.0 / max(int(has.sum()), 1), 0.0)
    no_volume = ~np.isfinite(panel.volume).any(axis=0)
    volume = traded_volume(panel)
    results: dict[float, dict[str, BacktestResult]] = {}
    for bps in settings.costs_bps:
        config = cost_config(bps)
        results[bps] = {
            name: run_backtest(w, panel.open, panel.close, volume, config=config, tickers=panel.tickers)
            for name, w in weights.items()
        }
    seconds["backtests"] = time.perf_counter() - clock

    clock = time.perf_counter()
    main = results[settings.main_bps]
    strategies = [n for n in main if n not in BASELINES]
    trial_sharpes = [
        s
        for bps in settings.costs_bps
        for n in strategies
        if math.isfinite(s := sharpe_ratio(results[bps][n].returns[first:]))
    ] + [t for t in settings.extra_trials if math.isfinite(t)]
    rets = {name: r.returns[first:] for name, r in main.items()}
    table = metrics_table(
        rets,
        rets["equal_weight_universe"],
        trial_sharpes,
        turnover={name: r.turnover[first + 1 :] for name, r in main.items()},
    )
    sweep = np.column_stack([rets[n] for n in strategies])
    pbo = probability_of_backtest_overfitting(sweep, n_blocks=settings.pbo_blocks)
    run = BacktestRun(panel, main, table, first)
    cap = capacity_frame(run, cost_config(settings.main_bps))
    labels, skipped = regime_labels(run, bars)
    regimes = regime_frame(run, labels)
    seconds["scores"] = time.perf_counter() - clock
    return Report(
        settings=settings,
        panel=panel,
        first=first,
        rebalances=rebalances,
        allocations=allocations,
        results=results,
        metrics=table,
        trial_sharpes=trial_sharpes,
        pbo=pbo.pbo,
        pbo_configs=sweep.shape[1],
        pbo_combinations=pbo.n_combinations,
        capacity=cap,
        regimes=regimes,
        regimes_skipped=skipped,
        halts=halts,
        fallbacks=fallbacks,
        signal_counts=signal_counts,
        without_volume=tuple(t for t, m in zip(panel.tickers, no_volume, strict=True) if m),
        seconds=seconds,
    )


# ---------------------------------------------------------------- rendering


def _f(x, spec: str) -> str:
    if x is None:
        return "–"
    if isinstance(x, float) and math.isinf(x):
        return "∞" if x > 0 else "−∞"
    if isinstance(x, float) and math.isnan(x):
        return "–"
    return format(x, spec)


def _money(x: float) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if math.isinf(x):
        return "∞"
    if x <= 0:
        return "0 (no edge)"
    for unit, scale in (("bn", 1e9), ("M", 1e6), ("k", 1e3)):
        if x >= scale:
            return f"${x / scale:,.1f}{unit}"
    return f"${x:,.0f}"


@dataclass(frozen=True)
class HitScreen:
    """A strategy whose daily hit rate exceeds :data:`LEAKAGE_HIT_RATE`, beside the equal-weight
    universe's hit rate on the same days (those the strategy's return was not 0)."""

    strategy: str
    hit_rate: float
    universe_hit_rate: float
    days: int

    @property
    def suspect(self) -> bool:
        """Above 55 % and more than two binomial standard errors above the universe on its days:
        what a long book in a rising market cannot explain is treated as leakage."""
        p = self.universe_hit_rate
        se = math.sqrt(p * (1 - p) / self.days) if self.days else math.inf
        return self.hit_rate > p + 2 * se


def leakage_screen(report: Report) -> list[HitScreen]:
    """Every strategy (not baseline) whose daily hit rate is above 55 %."""
    universe = report.returns("equal_weight_universe")
    out = []
    for name in report.strategies:
        r = report.returns(name)
        active = r != 0
        if not active.any():
            continue
        hit = float((r[active] > 0).mean())
        if hit > LEAKAGE_HIT_RATE:
            out.append(HitScreen(name, hit, float((universe[active] > 0).mean()), int(active.sum())))
    return out


def leakage_flags(report: Report) -> list[str]:
    """Strategies whose daily hit rate is above 55 % and not explained by the market's (see
    :class:`HitScreen`): treated as leakage, not skill."""
    return [h.strategy for h in leakage_screen(report) if h.suspect]


def reading(report: Report) -> str:
    m = report.metrics
    strat = m.filter(~pl.col("strategy").is_in(list(BASELINES)))
    ew = m.filter(pl.col("strategy") == "equal_weight_universe").row(0, named=True)
    best = strat.sort("sharpe", descending=True, nulls_last=True).row(0, named=True)
    beat = strat.filter(pl.col("information_ratio") > 0).height
    sig = strat.filter(pl.col("dsr") >= 0.95)
    psr95 = strat.filter(pl.col("psr") >= 0.95)
    parts = [
        f"After {report.settings.main_bps:g} bps a side, the best of the {strat.height} strategies by Sharpe is "
        f"{best['strategy']} (Sharpe {best['sharpe']:.2f}, CAGR {best['cagr']:.1%}, max drawdown "
        f"{best['max_drawdown']:.1%}, PSR {_f(best['psr'], '.2f')}, DSR {_f(best['dsr'], '.2f')}); the equal-weight "
        f"universe made {ew['cagr']:.1%} a year at Sharpe {ew['sharpe']:.2f}. {beat} of {strat.height} strategies "
        f"{'has' if beat == 1 else 'have'} a positive information ratio against it."
    ]
    halted = [n for n, h in report.halts.items() if h[KILL_SWITCH]]
    stopped = [n for n, h in report.halts.items() if h[EMERGENCY_STOP]]
    if halted or stopped:
        bound = []
        if halted:
            bound.append(
                f"the 15 % kill switch latched in {len(halted)} of {len(report.halts)} allocation runs (flat from "
                "then on: a backtest never resets it)"
            )
        if stopped:
            most = max(h[EMERGENCY_STOP] for h in report.halts.values())
            bound.append(
                f"the hit-rate emergency stop (the source's signals right less than 45 % of the time over 63 "
                f"sessions) flattened {len(stopped)} of the {len(report.halts)} allocation runs on up to {most} of "
                f"{len(report.rebalances)} rebalances"
            )
        parts.append(
            "The hard limits bound: "
            + "; ".join(bound)
            + ". Those runs spent much of the window in cash: their low volatility is the limits', not the signals'."
        )
    if sig.height:
        parts.append(
            f"{sig.height} clear DSR ≥ 0.95 ({', '.join(sig['strategy'].to_list())}); read them beside the PBO."
        )
    else:
        parts.append(
            f"None clears DSR ≥ 0.95 once the {len(report.trial_sharpes)} trials of this report are counted "
            f"({psr95.height} {'has' if psr95.height == 1 else 'have'} PSR ≥ 0.95 even before deflation)"
        )
        parts[-1] += ": no significant skill after costs."
    parts.append(
        f"PBO over the {report.pbo_configs}-configuration sweep is {report.pbo:.2f} "
        + (
            "(the in-sample winner lands in the bottom half out of sample about as often as chance "
            "or more: picking the best configuration is not evidence)."
            if report.pbo >= 0.3
            else "(the sweep's in-sample winner mostly stays in the top half out of sample: the ranking of the "
            "configurations is stable across the splits, which says the sweep was not overfitted, not that its "
            "winner has skill; that is the DSR's question)."
        )
    )
    q = topk_name(*QLIB_TOPK)
    if q in set(m["strategy"]):
        qr = m.filter(pl.col("strategy") == q).row(0, named=True)
        free = report.returns(q, 0.0) if 0.0 in report.results else None
        drag = ""
        if free is not None:
            gross = float(np.prod(1 + free) ** (252 / free.size) - 1)
            drag = f" ({gross:.1%} before costs, at {qr['mean_turnover']:.0%} turnover a day)"
        parts.append(
            f"Qlib's top-50/drop-5 rule on our ML scores made {qr['cagr']:.1%} a year{drag} against the "
            f"equal-weight universe's {ew['cagr']:.1%}; Qlib's own figure on these data is "
            f"{QLIB_FIGURE['topk_dropout']:.1%} against {QLIB_FIGURE['equal_weight_universe']:.1%}: "
            + (
                "the same verdict, the rule trails the universe."
                if qr["cagr"] < ew["cagr"]
                else "unlike Qlib's, ours does not trail the universe here."
            )
        )
    screen = leakage_screen(report)
    suspects = [h for h in screen if h.suspect]
    if not screen:
        parts.append(
            f"No strategy has a daily hit rate above 55 % (the leakage alarm); the equal-weight universe's own is "
            f"{ew['hit_rate']:.1%}."
        )
    else:
        listed = "; ".join(
            f"{h.strategy} {h.hit_rate:.1%} vs {h.universe_hit_rate:.1%} ({h.days} days)" for h in screen
        )
        parts.append(
            f"Leakage screen: {len(screen)} strategies hit more than 55 % of their active days (strategy vs the "
            f"equal-weight universe on the same days: {listed}). "
            + (
                "Each is within two standard errors of the universe on its own days, which a long book in a "
                "rising market explains; none is treated as skill, and none as leakage."
                if not suspects
                else f"Treated as leakage to investigate, not as skill: {', '.join(h.strategy for h in suspects)} "
                "(more than two standard errors above the universe on the same days)."
            )
        )
    return " ".join(parts)


def schedule_note(every: int, rebalances: int, configs: int) -> str:
    """How the allocation runs were scheduled, and why not daily."""
    why = (
        f"a daily rebalance of all {configs} method × source runs (a solve per run and session) does not fit "
        "the 2-core budget"
    )
    if every >= MONTHLY:
        return (
            f"**Rebalanced monthly**, at each month's first session ({rebalances} rebalances; {why}), holding "
            "in between: the signals' 5-session horizon is shorter than the holding period, so this tests the "
            "month-start views held for a month. TS has a view only at month starts (its origins), so every source "
            "has one at every rebalance."
        )
    return (
        f"**Rebalanced every {every} sessions**, counted from each month's first session ({rebalances} "
        f"rebalances; {why}), holding in between. TS has a view only at month starts (its origins): on the "
        "other rebalances the TS strategies hold nothing."
    )


def allocation_trials(report: Report) -> list[float]:
    """Per-period Sharpes of the allocation runs (method x source) at every cost level: the trials
    a second rebalance spacing adds (TopkDropout and the baselines do not depend on it)."""
    return [
        s
        for bps in report.settings.costs_bps
        for name in report.allocations
        if math.isfinite(s := sharpe_ratio(report.returns(name, bps)))
    ]


def spacing_section(report: Report, other: Report | None) -> list[str]:
    """The allocation runs under a second rebalance spacing, beside this report's."""
    if other is None:
        return []
    a, b = report.settings.rebalance_every, other.settings.rebalance_every

    def label(every: int) -> str:
        return "monthly" if every >= MONTHLY else f"every {every} sessions"

    rows_a = {r["strategy"]: r for r in report.metrics.iter_rows(named=True)}
    rows_b = {r["strategy"]: r for r in other.metrics.iter_rows(named=True)}
    lines = [
        "## Rebalance spacing",
        "",
        f"The allocation runs rebalanced {label(a)} (above) and {label(b)} ({len(other.rebalances)} rebalances), "
        f"{report.settings.main_bps:g} bps a side; the {label(b)} runs are counted among the DSR's trials.",
        "",
        f"| strategy | CAGR ({label(a)}) | Sharpe | max DD | kill switch flat | CAGR ({label(b)}) | Sharpe "
        "| max DD | kill switch flat |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name in report.allocations:
        if name not in rows_b:
            continue
        x, y = rows_a[name], rows_b[name]
        lines.append(
            f"| {name} | {_f(x['cagr'], '.1%')} | {_f(x['sharpe'], '.2f')} | {_f(x['max_drawdown'], '.1%')} | "
            f"{report.halts[name][KILL_SWITCH]} of {len(report.rebalances)} | {_f(y['cagr'], '.1%')} | "
            f"{_f(y['sharpe'], '.2f')} | {_f(y['max_drawdown'], '.1%')} | "
            f"{other.halts[name][KILL_SWITCH]} of {len(other.rebalances)} |"
        )
    return [*lines, ""]


def render(report: Report, meta: dict) -> str:
    s = report.settings
    m = report.metrics
    order = [*report.strategies, *BASELINES]
    rows = {r["strategy"]: r for r in m.iter_rows(named=True)}
    n_trials = len(report.trial_sharpes)
    lines = [
        "# Backtests on the shared data set",
        "",
        f"Generated by `{meta['command']}` on {meta['generated']} ({meta['machine']}).",
        f"Data: `{meta['parquet']}`, {meta['data_note']}. TS forecasts: `{meta['walk_forward']}` (the walk-forward "
        "ensemble, 5-session horizon, monthly origins); ML: LightGBM retrained at "
        f"{meta['ml_schedule']} on what "
        f"was known at that close. Test window {s.start}..{s.end} "
        f"({len(report.panel.dates) - report.first} sessions, {report.panel.close.shape[1]} tickers in the panel). "
        f"Runtime {meta['seconds']:.0f} s ({meta['timings']}).",
        "",
        "## How it was run",
        "",
        "* Signals: the router with one source on (`ts`, `ml`) or its defaults (`routed`: TS first, ML second, LLM "
        "off), threshold 0.55, costs 5 + 5 bps, calibration on each source's own calls of the previous 252 sessions.",
        "* Allocation: `model_code.allocation.allocate.allocate` for every method × source, then the hard limits "
        "(10 % a position, gross ≤ 100 %, no position below 0.55 confidence, the 15 % drawdown kill switch latched "
        "for the rest of the run, the emergency stop below a 45 % rolling hit rate). "
        + schedule_note(s.rebalance_every, len(report.rebalances), len(report.allocations))
        + " The barbell's regime confidence is the forward-filtered "
        f"calm-state probability of a 2-state HMM fitted on the market before {s.start}; its safe sleeve is cash.",
        "* Qlib's TopkDropout on the ML scores: top-k names by forecast, at most n_drop swapped a day for better "
        "ranked ones, equal weight among held, **rebalanced daily**; the sweep runs "
        + ", ".join(f"top-{k}/drop-{d}" for k, d in s.topk)
        + " (Qlib's rule is top-50/drop-5).",
        "* Execution: `model_code/backtest/engine.py` with `model_code/execution.py`: decisions at close T fill at "
        "the T+1 open (T+1 close for close-only tickers), the participation cap at 10 % of the 20-session ADV, "
        "split/dividend-adjusted prices, delisted names closed at their last close, cash earns 0. Costs "
        f"{' / '.join(f'{b:g}' for b in s.costs_bps)} bps a side (commission + slippage); the tables use "
        f"**{s.main_bps:g} bps** (the default 5 + 5) unless they say otherwise.",
        f"* Scores: `model_code/backtest/metrics.py` on daily simple returns from the first decision; IR against the "
        f"equal-weight universe; DSR with N = {n_trials} trials (every strategy × cost level of this report; the "
        "baselines are not trials); MinTRL at 95 % against SR* = 0, in sessions; PBO by CSCV "
        f"(`overfitting.py`, {s.pbo_blocks} blocks, {report.pbo_combinations:,} splits) over the "
        f"{report.pbo_configs} strategies at {s.main_bps:g} bps.",
        f"* Data faults: {meta['faults']}"
        + (
            f" Tickers with no volume data (traded without the participation cap): {len(report.without_volume)}."
            if report.without_volume
            else ""
        ),
        "",
        f"## Every strategy and baseline ({s.main_bps:g} bps a side)",
        "",
        "| strategy | CAGR | vol | Sharpe | Sortino | max DD | Calmar | profit factor | daily hit | IR vs 1/N "
        "| turnover/day | PSR | DSR | MinTRL |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name in order:
        r = rows[name]
        lines.append(
            f"| {name} | {_f(r['cagr'], '.1%')} | {_f(r['volatility'], '.1%')} | {_f(r['sharpe'], '.2f')} | "
            f"{_f(r['sortino'], '.2f')} | {_f(r['max_drawdown'], '.1%')} | {_f(r['calmar'], '.2f')} | "
            f"{_f(r['profit_factor'], '.3f')} | {_f(r['hit_rate'], '.1%')} | "
            f"{_f(r['information_ratio'], '.2f')} | {_f(r['mean_turnover'], '.1%')} | {_f(r['psr'], '.3f')} | "
            f"{_f(r['dsr'], '.3f')} | {_f(r['min_track_record_length'], ',.0f')} |"
        )
    lines += [
        "",
        "Cash (not in the table) earns 0 % with no risk: a strategy below it lost money. The allocation `equal_weight` "
        "is 1/N over the day's BUY names; `equal_weight_universe` is 1/N over every ticker with a bar "
        "(the benchmark), rebalanced daily; `buy_and_hold` is 1/N on the first day, never rebalanced. These two are "
        "the always-up baselines of a long-only book (buy everything); `inverse_vol_universe` weighs every ticker by "
        "1 / its trailing 63-session volatility, daily.",
        "",
        "Limits and fallbacks over the rebalances (count of rebalance sessions):",
        "",
        "| strategy | kill switch flat | emergency stop flat | solver fallback |",
        "| --- | --- | --- | --- |",
    ]
    for name in report.allocations:
        h = report.halts[name]
        lines.append(f"| {name} | {h[KILL_SWITCH]} | {h[EMERGENCY_STOP]} | {report.fallbacks[name]} |")
    q = topk_name(*QLIB_TOPK)
    qr, ew = rows.get(q), rows["equal_weight_universe"]
    lines += [
        "",
        "## Qlib's TopkDropout on our ML scores",
        "",
        "| | TopkDropout top-50/drop-5 | equal-weight universe |",
        "| --- | --- | --- |",
        f"| Qlib's own figure on these data (quoted) | {QLIB_FIGURE['topk_dropout']:.1%}/yr | "
        f"{QLIB_FIGURE['equal_weight_universe']:.1%}/yr |",
        f"| ours, CAGR after {s.main_bps:g} bps a side | {_f(qr and qr['cagr'], '.1%')}/yr | {ew['cagr']:.1%}/yr |",
        f"| ours, Sharpe | {_f(qr and qr['sharpe'], '.2f')} | {ew['sharpe']:.2f} |",
        "",
        "Qlib's figure comes from its own pipeline (its features, model and exchange costs); ours uses our ML scores "
        "and our execution model, so the two agree only in kind, not to the digit.",
        "",
        "## Costs",
        "",
        "CAGR (Sharpe) at each cost level, bps a side:",
        "",
        "| strategy | " + " | ".join(f"{b:g} bps" for b in s.costs_bps) + " |",
        "| --- | " + " | ".join("---" for _ in s.costs_bps) + " |",
    ]
    for name in order:
        cells = []
        for b in s.costs_bps:
            r = report.returns(name, b)
            growth = float(np.prod(1 + r) ** (252 / r.size) - 1)
            cells.append(f"{growth:.1%} ({_f(sharpe_ratio(r) * math.sqrt(252), '.2f')})")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## Capacity",
        "",
        f"`model_code.backtest.runs.capacity_frame` on the {s.main_bps:g}-bps runs: square-root impact "
        f"`k · σ · √(Q / ADV)` plus a half-spread of the run's cost a side ({s.main_bps:g} bps), on each run's own "
        "trades (traded notional / the previous close's equity) with its gross returns (costs added back); ADV "
        "and σ trailing 20 sessions, known at each decision. AUM in dollars; capacity is the smaller of "
        "'net Sharpe halves' and 'participation cap binds'. `0 (no edge)`: the gross edge does not cover the "
        "half-spread even at zero size; `unknown`: no trade could be priced.",
        "",
        "| strategy | edge vanishes | net Sharpe halves | participation cap binds | capacity (k = 1) "
        "| capacity (k = 0.5) | trades (unpriced) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    cap = report.capacity
    for name in order:
        one = cap.filter((pl.col("strategy") == name) & (pl.col("k") == 1.0))
        half = cap.filter((pl.col("strategy") == name) & (pl.col("k") == 0.5))
        if not one.height:
            continue
        r = one.row(0, named=True)
        h = half.row(0, named=True) if half.height else {"capacity": None}
        lines.append(
            f"| {name} | {_money(r['aum_edge_vanishes'])} | {_money(r['aum_sharpe_halves'])} | "
            f"{_money(r['aum_participation_binds'])} | {_money(r['capacity'])} | {_money(h['capacity'])} | "
            f"{r['trades']:,} ({r['unpriced_trades']:,}) |"
        )
    reg = report.regimes
    kinds = [k for k in ("volatility", "trend", "hmm") if k in set(reg["regime_kind"].to_list())]
    columns = reg.select("regime_kind", "regime").unique().sort("regime_kind", "regime").rows()
    columns = [c for k in kinds for c in columns if c[0] == k]
    lines += [
        "",
        "## Regimes",
        "",
        "`model_code.backtest.runs.regime_labels` / `regime_frame`: labels known at the close before each day: "
        "the market's (equal-weight universe's) 21-day volatility in terciles with expanding cut-offs, its "
        "price against its 200-day average, and the state of a 2-state HMM fitted on the dates before "
        f"{s.start} read through its forward-filtered calm-state probability. Annualized Sharpe ± s.e. "
        f"({s.main_bps:g} bps); per kind, the worst regime and Cochran's Q p-value of equal Sharpe across regimes"
        + (f" ({'; '.join(report.regimes_skipped.values())})" if report.regimes_skipped else "")
        + ".",
        "",
        "| strategy | "
        + " | ".join(f"{k}: {g}" for k, g in columns)
        + " | worst ("
        + " / ".join(kinds)
        + ") | share positive | Q p ("
        + " / ".join(kinds)
        + ") |",
        "| --- | " + " | ".join("---" for _ in columns) + " | --- | --- | --- |",
    ]
    for name in order:
        sub = reg.filter(pl.col("strategy") == name)
        if not sub.height:
            continue
        cell = {(r["regime_kind"], r["regime"]): r for r in sub.iter_rows(named=True)}
        cells = [
            "–"
            if (r := cell.get(key)) is None
            else f"{r['sharpe_annualized']:.2f} ± {r['sharpe_se'] * math.sqrt(252):.2f}"
            for key in columns
        ]
        worst = " / ".join(
            next(
                (r["regime"] for r in sub.iter_rows(named=True) if r["regime_kind"] == k and r["is_worst"]),
                "–",
            )
            for k in kinds
        )
        share = float((sub["sharpe"] > 0).mean())
        pvals = " / ".join(
            _f(sub.filter(pl.col("regime_kind") == k)["heterogeneity_p"][0], ".2f")
            if sub.filter(pl.col("regime_kind") == k).height
            else "–"
            for k in kinds
        )
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {worst} | {share:.0%} | {pvals} |")
    lines += [
        "",
        *spacing_section(report, meta.get("compare")),
        "## Signals behind the strategies",
        "",
        "| source | BUY | SELL | HOLD |",
        "| --- | --- | --- | --- |",
    ]
    for source, c in report.signal_counts.items():
        lines.append(f"| {source} | {c.get('BUY', 0):,} | {c.get('SELL', 0):,} | {c.get('HOLD', 0):,} |")
    lines += [
        "",
        "Only BUY signals take positions (long only); counts are over the rebalance sessions of the test window.",
        "",
        "## Reading it",
        "",
        reading(report),
        "",
    ]
    return "\n".join(lines)


def machine() -> str:
    return f"{os.cpu_count()}-core VM, {platform.system()} {platform.machine()}, Python {platform.python_version()}"


def main() -> int:
    from model_code.evaluation.clean_bars import load_clean_bars, repo_relative
    from model_code.features import build_daily_features, build_targets
    from model_code.signals.report import ml_inputs, month_starts, ts_inputs

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parquet", required=True, type=Path)
    parser.add_argument("--walk-forward", required=True, type=Path)
    parser.add_argument("--start", default="2018-01-02")
    parser.add_argument("--end", default="2019-12-31")
    parser.add_argument("--out", type=Path, default=Path("docs/results/backtest.md"))
    parser.add_argument("--machine", default=None)
    parser.add_argument(
        "--ml-from", default="2017-01-03", help="first ML forecast session (calibration history)"
    )
    parser.add_argument("--rebalance-every", type=int, default=5)
    parser.add_argument(
        "--compare-rebalance-every",
        type=int,
        default=None,
        help="also run the allocations at this spacing and show them beside the main ones",
    )
    parser.add_argument(
        "--ml-retrain-months",
        type=int,
        default=1,
        help="retrain LightGBM every this many months (1: monthly, as docs/results/signals.md)",
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="folder for the ML forecasts, signals and allocations: read back if there, else written",
    )
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--sources", default=",".join(SOURCES))
    args = parser.parse_args()
    began = time.perf_counter()
    start, end = dt.date.fromisoformat(args.start), dt.date.fromisoformat(args.end)
    clean = load_clean_bars(args.parquet)
    bars = clean.bars
    print(f"{bars.height:,} clean bars, {bars['ticker'].n_unique()} tickers")
    features = build_daily_features(bars)
    targets = build_targets(bars)
    calendar = trading_calendar()
    clock = time.perf_counter()
    all_sessions = calendar.session_dates(dt.date.fromisoformat(args.ml_from), end)
    every = args.ml_retrain_months
    # ml_inputs retrains at the first of the sessions it is given in each month and forecasts every
    # feature date up to the next one: giving it every `every`-th month's first session (and the
    # last session) retrains every `every` months.
    firsts = [d for i, d in enumerate(month_starts(all_sessions)) if i % every == 0]
    schedule = all_sessions if every == 1 else sorted({*firsts, all_sessions[-1]})
    credit: dict[str, float] = {}
    ml = _cached(
        args.cache_dir,
        f"ml_{args.ml_from}_{end}_{every}m",
        lambda: ml_inputs(features, targets, schedule),
        credit,
        "ml",
    )
    inputs = pl.concat([ts_inputs(pl.read_parquet(args.walk_forward)), ml])
    ml_seconds = time.perf_counter() - clock + credit.get("ml", 0.0)
    settings = ReportSettings(
        start=start,
        end=end,
        methods=tuple(args.methods.split(",")),
        sources=tuple(args.sources.split(",")),
        rebalance_every=args.rebalance_every,
    )
    other, other_seconds = None, 0.0
    if args.compare_rebalance_every is not None:
        other_credit: dict[str, float] = {}
        clock = time.perf_counter()
        other = run_report(
            bars,
            inputs,
            targets,
            dataclasses.replace(settings, rebalance_every=args.compare_rebalance_every, topk=()),
            calendar=calendar,
            cache=args.cache_dir,
            credit=other_credit,
        )
        other_seconds = time.perf_counter() - clock + sum(other_credit.values())
        credit["comparison"] = sum(other_credit.values())
        settings = dataclasses.replace(settings, extra_trials=tuple(allocation_trials(other)))
    report = run_report(
        bars, inputs, targets, settings, calendar=calendar, cache=args.cache_dir, credit=credit
    )
    quarantined = ", ".join(f"{k} {v:,}" for k, v in sorted(clean.quarantined.items())) or "none"
    command = (
        f"python -m model_code.backtest.report --parquet {repo_relative(args.parquet)} --walk-forward "
        f"{args.walk_forward.name} --start {start} --end {end} --out {args.out}"
    )
    if args.rebalance_every != 5:
        command += f" --rebalance-every {args.rebalance_every}"
    if args.compare_rebalance_every is not None:
        command += f" --compare-rebalance-every {args.compare_rebalance_every}"
    if every != 1:
        command += f" --ml-retrain-months {every}"
    timings = ", ".join(
        [f"ML retraining {ml_seconds:.0f} s"]
        + [f"{k} {v:.0f} s" for k, v in report.seconds.items()]
        + ([f"the second rebalance spacing {other_seconds:.0f} s"] if other is not None else [])
    )
    meta = {
        "command": command,
        "generated": dt.date.today().isoformat(),
        "machine": args.machine or machine(),
        "parquet": repo_relative(args.parquet),
        "walk_forward": args.walk_forward.name,
        "data_note": (
            f"{clean.raw_rows:,} rows / {clean.raw_tickers} tickers read, {bars.height:,} rows / "
            f"{bars['ticker'].n_unique()} tickers accepted"
        ),
        "faults": (
            "bars read through `model_code.evaluation.clean_bars.load_clean_bars` (the product's validator); "
            f"quarantined rows by reason: {quarantined}; tickers with no accepted row: "
            f"{', '.join(clean.dropped_tickers) or 'none'}. Missing bars hold (no fill without a bar)."
        ),
        "timings": timings,
        "ml_schedule": (
            "each month's first session"
            if every == 1
            else f"the first session of every {every} months (monthly in `docs/results/signals.md`; "
            "fewer retrainings to fit the 2-core budget), forecasting every session up to the next retraining,"
        ),
        "seconds": time.perf_counter() - began + sum(credit.values()),
        "compare": other,
    }
    args.out.write_text(render(report, meta))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
