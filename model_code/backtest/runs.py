"""Backtest the stored allocations beside their baselines, on one panel and one execution model.

Strategies, all through :func:`~model_code.backtest.engine.run_backtest` with the same
:class:`~model_code.execution.ExecutionConfig` (next-bar fills, costs, participation cap):

* ``strategy``: ``portfolio.allocations``' target weights at each as_of (tickers it does not list
  are 0: an allocation is the whole book), holding between allocation dates;
* ``equal_weight``: 1/N of the tickers with a bar each session (the universe benchmark);
* ``inverse_vol``: weights ∝ 1 / trailing 63-session volatility known at each close;
* ``buy_and_hold``: 1/N at the first session, never rebalanced.

Prices are split- and dividend-adjusted (``adj_close``, the open scaled by ``adj_close / close``)
so a split is not a loss. Daily returns are simple; metrics as in :mod:`model_code.backtest.metrics`.
A ticker with no volume at all in the panel (close-only series, e.g. the bundled data's) has no
ADV for the participation cap: it is traded as if liquidity were unlimited, and the run lists it
in ``without_volume`` so a report can say so; a ticker with some volume keeps the cap.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass

import numpy as np
import polars as pl

from model_code.allocation.allocate import CASH
from model_code.backtest.engine import BacktestResult, run_backtest
from model_code.backtest.metrics import MIN_PERIODS, metrics_table, sharpe_ratio
from model_code.execution import ExecutionConfig

BASELINES = ("equal_weight", "inverse_vol", "buy_and_hold")
VOL_WINDOW = 63
# Shares a day assumed for a ticker with no volume data: so large the cap never binds and the
# square-root impact is nil (the engine needs finite volumes).
NO_VOLUME_SHARES = 1e18


class NothingToBacktest(ValueError):
    """No stored allocation yet, or no bar after the first one to fill it at."""


@dataclass(frozen=True)
class Panel:
    """Date × ticker arrays of adjusted prices and volume for ``dates`` and ``tickers``."""

    dates: list[dt.date]
    tickers: list[str]
    open: np.ndarray
    close: np.ndarray
    volume: np.ndarray


def price_panel(bars: pl.DataFrame, start: dt.date, end: dt.date) -> Panel:
    """Adjusted open/close and volume for the sessions with any bar in ``start..end``."""
    window = bars.filter(pl.col("date").is_between(start, end))
    factor = (pl.coalesce("adj_close", "close") / pl.col("close")).fill_nan(1.0)
    adjusted = window.with_columns(adj_open=pl.col("open") * factor, adj=pl.coalesce("adj_close", "close"))
    dates = sorted(adjusted["date"].unique().to_list())
    tickers = sorted(adjusted["ticker"].unique().to_list())

    def wide(col: str) -> np.ndarray:
        frame = adjusted.pivot(on="ticker", index="date", values=col).sort("date")
        frame = frame.select(
            "date", *[pl.col(t) if t in frame.columns else pl.lit(None).alias(t) for t in tickers]
        )
        return frame.drop("date").to_numpy().astype(np.float64)

    return Panel(dates, tickers, wide("adj_open"), wide("adj"), wide("volume"))


def strategy_weights(allocations: pl.DataFrame, panel: Panel) -> np.ndarray:
    """The allocations as a weight panel: NaN (hold) where no allocation was made that day."""
    w = np.full(panel.close.shape, np.nan)
    row = {d: i for i, d in enumerate(panel.dates)}
    col = {t: j for j, t in enumerate(panel.tickers)}
    for (as_of,), day in allocations.filter(pl.col("ticker") != CASH).group_by("as_of"):
        if as_of not in row:
            continue
        w[row[as_of]] = 0.0
        for ticker, weight in day.select("ticker", "weight").iter_rows():
            if ticker in col:
                w[row[as_of], col[ticker]] = weight
    # a weight on a ticker with no close that day cannot be traded: hold it instead
    return np.where(np.isfinite(panel.close) | np.isnan(w), w, np.nan)


def baseline_weights(name: str, panel: Panel) -> np.ndarray:
    """Target weights of one baseline (see the module docstring)."""
    has = np.isfinite(panel.close)
    if name == "equal_weight":
        n = has.sum(axis=1, keepdims=True)
        return np.where(has, 1.0 / np.maximum(n, 1), np.nan)
    if name == "buy_and_hold":
        w = np.full(panel.close.shape, np.nan)
        w[0] = np.where(has[0], 1.0 / max(int(has[0].sum()), 1), 0.0)
        return w
    if name == "inverse_vol":
        rets = pl.DataFrame(panel.close).select(pl.all().pct_change())
        vol = rets.select(pl.all().rolling_std(VOL_WINDOW, min_samples=20)).to_numpy()
        inv = np.where(has & np.isfinite(vol) & (vol > 0), 1.0 / vol, 0.0)
        total = inv.sum(axis=1, keepdims=True)
        return np.where(has, np.divide(inv, total, out=np.zeros_like(inv), where=total > 0), np.nan)
    raise ValueError(f"unknown baseline {name!r}; known: {BASELINES}")


def config_hash(config: dict) -> str:
    """A stable id of a backtest configuration (``backtest.trials`` keys on it)."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class BacktestRun:
    panel: Panel
    results: dict[str, BacktestResult]
    metrics: pl.DataFrame
    first: int = 0  # the panel row of the first decision; earlier rows are warm-up
    without_volume: tuple[str, ...] = ()  # traded without the participation cap (no ADV known)

    def equity_frame(self) -> pl.DataFrame:
        """``(strategy, date, equity, drawdown, gross_exposure, turnover, costs)`` rows."""
        frames = []
        for name, r in self.results.items():
            frames.append(
                pl.DataFrame(
                    {
                        "strategy": name,
                        "date": self.panel.dates[self.first :],
                        "equity": r.equity[self.first :],
                        "drawdown": -r.drawdown[self.first :],
                        "gross_exposure": r.gross_exposure[self.first :],
                        "turnover": r.turnover[self.first :],
                        "costs": r.costs[self.first :],
                    }
                )
            )
        return pl.concat(frames)


def backtest_allocations(
    allocations: pl.DataFrame,
    bars: pl.DataFrame,
    *,
    config: ExecutionConfig | None = None,
    initial_cash: float = 1_000_000.0,
    trial_sharpes: list[float] | None = None,
) -> BacktestRun:
    """Run the strategy and every baseline from the first allocation date to the last bar."""
    if allocations.is_empty():
        raise NothingToBacktest("no stored allocation to backtest: materialize portfolio/allocations first")
    start, end = allocations["as_of"].min(), bars["date"].max()
    if end <= start:
        raise NothingToBacktest(f"no bar after the first allocation ({start}) yet: nothing has filled")
    config = config or ExecutionConfig()
    # Warm-up sessions before the first decision so the trailing ADV (the participation cap) and
    # volatility are known when it is made; every series is scored from the first decision on.
    earlier = sorted(d for d in bars["date"].unique().to_list() if d < start)[-(config.window + VOL_WINDOW) :]
    panel = price_panel(bars, earlier[0] if earlier else start, end)
    first = panel.dates.index(start) if start in panel.dates else 0
    scored = len(panel.dates) - first - 1
    if scored < MIN_PERIODS:
        raise NothingToBacktest(
            f"{scored} session(s) since the first allocation ({start}); the metrics need {MIN_PERIODS}"
        )
    weights = {"strategy": strategy_weights(allocations, panel)}
    weights |= {name: baseline_weights(name, panel) for name in BASELINES}
    for w in weights.values():
        w[:first] = np.nan  # nobody decides before the strategy's first allocation
    weights["buy_and_hold"][first] = baseline_weights("buy_and_hold", _from(panel, first))[0]
    no_volume = ~np.isfinite(panel.volume).any(axis=0)
    volume = np.where(no_volume[None, :] & np.isfinite(panel.close), NO_VOLUME_SHARES, panel.volume)
    results = {
        name: run_backtest(
            w,
            panel.open,
            panel.close,
            volume,
            initial_cash=initial_cash,
            config=config,
            tickers=panel.tickers,
        )
        for name, w in weights.items()
    }
    returns = {name: r.returns[first:] for name, r in results.items()}
    trials = [*(trial_sharpes or []), sharpe_ratio(returns["strategy"])]
    table = metrics_table(
        returns,
        returns["equal_weight"],
        [t for t in trials if np.isfinite(t)],
        turnover={name: r.turnover[first + 1 :] for name, r in results.items()},
    )
    without = tuple(t for t, missing in zip(panel.tickers, no_volume, strict=True) if missing)
    return BacktestRun(panel, results, table, first, without)


def _from(panel: Panel, first: int) -> Panel:
    return Panel(
        panel.dates[first:], panel.tickers, panel.open[first:], panel.close[first:], panel.volume[first:]
    )
