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

Beside the metrics, each run gets two diagnostic tables (:func:`regime_frame`,
:func:`capacity_frame`), for the strategy and every baseline:

* regimes (:mod:`model_code.backtest.regimes`): the daily returns split by the market's
  volatility tercile (expanding cut-offs) and trend (price vs its 200-day average), both through
  T-1 and computed over the whole stored history, and by the state of a 2-state HMM fitted only
  on the dates before the first decision and read through its forward-filtered probability of
  the calm state at T-1 (``calm`` when >= 0.5). Per regime the Sharpe ± its standard error; per
  kind the worst regime, the share with a positive Sharpe and Cochran's Q test;
* capacity (:mod:`model_code.backtest.capacity`, k = 1 and the 0.5 sensitivity): the run's own
  trades as weight changes (traded notional / the previous close's equity), its gross returns
  (the day's costs added back), the trailing ADV and volatility known at each decision, and the
  run's proportional cost per side as the half-spread. A trade with no ADV (a ticker without
  volume data, which the backtest trades as if liquidity were unlimited) or no volatility known
  yet cannot be priced: it is left out and counted (``unpriced_trades``; the levels then
  overstate the capacity), and a strategy none of whose trades can be priced has NULL levels
  (unknown, not infinite).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from model_code.allocation.allocate import CASH
from model_code.backtest.capacity import capacity
from model_code.backtest.engine import BacktestResult, run_backtest
from model_code.backtest.metrics import MIN_PERIODS, metrics_table, sharpe_ratio
from model_code.backtest.regimes import regime_table, trend_regimes, volatility_regimes
from model_code.costs import BPS
from model_code.execution import ExecutionConfig, trailing_adv, trailing_volatility
from model_code.ml.regime import RegimeModel, market_regime_inputs

BASELINES = ("equal_weight", "inverse_vol", "buy_and_hold")
VOL_WINDOW = 63
# Shares a day assumed for a ticker with no volume data: so large the cap never binds and the
# square-root impact is nil (the engine needs finite volumes).
NO_VOLUME_SHARES = 1e18
REGIME_KINDS = ("volatility", "trend", "hmm")
CAPACITY_KS = (1.0, 0.5)  # the square-root impact coefficient, and its sensitivity


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
    volume = traded_volume(panel)
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


def traded_volume(panel: Panel) -> np.ndarray:
    """The panel's volume as the engine gets it: :data:`NO_VOLUME_SHARES` on the bars of a ticker
    that has no volume at all (unlimited liquidity), the stored volume elsewhere."""
    no_volume = ~np.isfinite(panel.volume).any(axis=0)
    return np.where(no_volume[None, :] & np.isfinite(panel.close), NO_VOLUME_SHARES, panel.volume)


def market_returns(bars: pl.DataFrame) -> pl.DataFrame:
    """``(date, ret)``: the equal-weight mean of the tickers' simple adjusted returns each date."""
    px = pl.coalesce("adj_close", "close")
    return (
        bars.sort("ticker", "date")
        .with_columns(ret=(px / px.shift(1) - 1).over("ticker"))
        .filter(pl.col("ret").is_finite())
        .group_by("date")
        .agg(pl.col("ret").mean())
        .sort("date")
    )


def calm_probability(bars: pl.DataFrame, before: dt.date) -> dict[dt.date, float]:
    """Forward-filtered P(calm state) per date of a 2-state HMM fitted on the dates before
    ``before`` only (its parameters never see the backtest window). Raises ``ValueError`` when
    there are too few such dates to fit it."""
    market = market_regime_inputs(bars)
    model = RegimeModel(n_states=2, method="hmm", seed=0).fit(market.filter(pl.col("date") < before))
    probs = model.state_probabilities(market)
    return dict(zip(probs["date"].to_list(), probs["p_state_0"].to_list(), strict=True))


def regime_labels(run: BacktestRun, bars: pl.DataFrame) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """One label per scored return of ``run`` (the return of session t, labelled with what was
    known at the close of t-1) for each kind of :data:`REGIME_KINDS`; and, per kind left out,
    why (the HMM needs history before the first decision)."""
    mkt = market_returns(bars)
    dates, ret = mkt["date"].to_list(), mkt["ret"].to_numpy()
    vol = dict(zip(dates, volatility_regimes(ret), strict=True))
    trend = dict(zip(dates, trend_regimes(np.cumprod(1 + ret)), strict=True))
    scored = run.panel.dates[run.first + 1 :]
    decided = run.panel.dates[run.first : -1]
    labels = {
        "volatility": np.array([vol.get(d) for d in scored], dtype=object),
        "trend": np.array([trend.get(d) for d in scored], dtype=object),
    }
    skipped: dict[str, str] = {}
    try:
        calm = calm_probability(bars, run.panel.dates[run.first])
    except (ValueError, RuntimeError) as exc:
        skipped["hmm"] = f"no HMM regimes: {exc}"
    else:
        labels["hmm"] = np.array(
            [None if (p := calm.get(d)) is None else ("calm" if p >= 0.5 else "turbulent") for d in decided],
            dtype=object,
        )
    return labels, skipped


REGIME_SCHEMA = {
    "strategy": pl.String,
    "regime_kind": pl.String,
    "regime": pl.String,
    "n": pl.Int64,
    "sharpe": pl.Float64,
    "sharpe_se": pl.Float64,
    "sharpe_annualized": pl.Float64,
    "is_worst": pl.Boolean,
    "regimes_in_kind": pl.Int64,
    "share_positive": pl.Float64,
    "cochran_q": pl.Float64,
    "heterogeneity_p": pl.Float64,
}


def regime_frame(run: BacktestRun, labels: dict[str, np.ndarray]) -> pl.DataFrame:
    """Per strategy, regime kind and regime (:data:`REGIME_SCHEMA`): days, per-period Sharpe ±
    its standard error, annualized; and, repeated on each row of a kind, whether it is the
    kind's worst regime, how many regimes the kind scored, the share with a positive Sharpe and
    Cochran's Q with its p-value (NaN with fewer than two regimes)."""
    frames = []
    for name, result in run.results.items():
        table, summary = regime_table(result.returns[run.first :], labels)
        if table.is_empty():
            continue
        frames.append(
            table.join(summary, on="kind", how="left")
            .with_columns(
                strategy=pl.lit(name),
                is_worst=pl.col("regime") == pl.col("worst_regime"),
            )
            .rename({"kind": "regime_kind", "days": "n", "regimes": "regimes_in_kind"})
            .select(list(REGIME_SCHEMA))
        )
    return pl.concat(frames) if frames else pl.DataFrame(schema=REGIME_SCHEMA)


CAPACITY_SCHEMA = {
    "strategy": pl.String,
    "k": pl.Float64,
    "half_spread": pl.Float64,
    "aum_edge_vanishes": pl.Float64,
    "aum_sharpe_halves": pl.Float64,
    "aum_participation_binds": pl.Float64,
    "capacity": pl.Float64,
    "gross_mean": pl.Float64,
    "fixed_cost": pl.Float64,
    "impact_coefficient": pl.Float64,
    "trades": pl.Int64,
    "unpriced_trades": pl.Int64,
}


def capacity_frame(
    run: BacktestRun, config: ExecutionConfig | None = None, ks: Sequence[float] = CAPACITY_KS
) -> pl.DataFrame:
    """Per strategy and ``k`` (:data:`CAPACITY_SCHEMA`): the dollar AUM at which the edge
    vanishes, the net Sharpe halves and the participation cap first binds, and the capacity (the
    smaller of the last two), from the run's own trades (see the module docstring). ``inf``: the
    costs never get there (no trade, or no impact); NULL: none of its trades can be priced."""
    config = config or ExecutionConfig()
    panel, first = run.panel, run.first
    adv = trailing_adv(panel.close, panel.volume, config.window)[first:-1]  # known at t-1
    sigma = trailing_volatility(panel.close, config.window)[first:-1]
    priced = np.isfinite(adv) & (adv > 0) & np.isfinite(sigma)
    half_spread = config.costs.per_side_bps * BPS
    cap = math.inf if config.participation_cap is None else config.participation_cap
    rows = []
    for name, r in run.results.items():
        before = r.equity[first:-1]
        gross = (r.equity[first + 1 :] + r.costs[first + 1 :]) / before - 1.0
        dw = np.abs(r.value[first + 1 :]) / before[:, None]
        trading = dw > 0
        unknown = bool(trading.any()) and not bool((trading & priced).any())
        for k in ks:
            c = capacity(
                gross,
                np.where(priced, dw, 0.0),
                np.where(priced, adv, 1.0),
                np.where(priced, sigma, 0.0),
                half_spread=half_spread,
                k=k,
                participation_cap=cap,
            )
            rows.append(
                {
                    "strategy": name,
                    "k": float(k),
                    "half_spread": half_spread,
                    "aum_edge_vanishes": None if unknown else c.edge_vanishes,
                    "aum_sharpe_halves": None if unknown else c.sharpe_halves,
                    "aum_participation_binds": None if unknown else c.participation_binds,
                    "capacity": None if unknown else c.capacity,
                    "gross_mean": c.gross_mean,
                    "fixed_cost": c.fixed_cost,
                    "impact_coefficient": c.impact_coefficient,
                    "trades": int(trading.sum()),
                    "unpriced_trades": int((trading & ~priced).sum()),
                }
            )
    return pl.DataFrame(rows, schema=CAPACITY_SCHEMA)


def headline(regimes: pl.DataFrame, capacities: pl.DataFrame, strategy: str = "strategy") -> dict[str, float]:
    """The key numbers of one strategy's regime and capacity tables (finite ones only):
    ``capacity_usd`` (k = 1), ``capacity_usd_k05``, ``aum_edge_vanishes_usd``,
    ``aum_participation_binds_usd``, ``capacity_unpriced_trades``, ``worst_regime_sharpe`` (annualized, over every kind),
    ``regime_share_positive`` (over every regime scored) and ``regime_heterogeneity_p`` (the
    smallest Cochran p over the kinds)."""
    out: dict[str, float] = {}
    cap = capacities.filter(pl.col("strategy") == strategy)
    for k, suffix in ((1.0, ""), (0.5, "_k05")):
        row = cap.filter(pl.col("k") == k)
        if row.height:
            out[f"capacity_usd{suffix}"] = row["capacity"][0]
            if not suffix:
                out["capacity_unpriced_trades"] = float(row["unpriced_trades"][0])
                out["aum_edge_vanishes_usd"] = row["aum_edge_vanishes"][0]
                out["aum_participation_binds_usd"] = row["aum_participation_binds"][0]
    reg = regimes.filter(pl.col("strategy") == strategy)
    if reg.height:
        out["worst_regime_sharpe"] = float(reg["sharpe_annualized"].min())
        out["regime_share_positive"] = float((reg["sharpe"] > 0).mean())
        p = reg["heterogeneity_p"].drop_nans().drop_nulls()
        if p.len():
            out["regime_heterogeneity_p"] = float(p.min())
    return {key: float(v) for key, v in out.items() if v is not None and math.isfinite(v)}


def markdown(frame: pl.DataFrame, *, digits: int = 3) -> str:
    """A markdown table of ``frame`` (floats to ``digits`` significant digits, dollars as
    ``1.2e+07``, ``inf`` as is, NULL as ``n/a``), for asset metadata."""

    def cell(v: object) -> str:
        if v is None:
            return "n/a"
        if isinstance(v, float):
            return str(v) if not math.isfinite(v) else f"{v:.{digits}g}"
        return str(v)

    head = "| " + " | ".join(frame.columns) + " |\n| " + " | ".join("---" for _ in frame.columns) + " |"
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.iter_rows()]
    return "\n".join([head, *body])
