"""Tearsheets: one self-contained HTML file per backtest run and one per paper account.

Written under ``$PM_HOME/reports/`` (:func:`reports_dir`): ``backtest/<run_id>.html`` from the
run's stored rows (``backtest.runs``, ``equity``, ``metrics``, ``regimes``, ``capacity``) and
``paper/<account>.html`` from ``paper.equity`` (with its ``backtest_equity`` and ``drift``),
``paper.trades`` and ``paper.fills``. Each holds equity and drawdown against the baselines, the
monthly returns heatmap, the drawdown periods, the metrics with PSR and DSR
(:mod:`model_code.backtest.metrics`), the costs, and for a backtest its capacity and regime
tables. The files open offline: inline CSS, images as base64 PNG data URIs, no script and no
link (:mod:`model_code.reports.html`).

The loaders read through a :class:`~model_code.warehouse.Warehouse`; the builders are pure
functions of the rows, so a test can hand them a synthetic run.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from model_code.backtest.metrics import MIN_PERIODS, PERIODS_PER_YEAR, metrics_table
from model_code.backtest.runs import BASELINES
from model_code.reporting.plots import DPI
from model_code.reports import html as h
from model_code.reports.figures import curves_png, monthly_heatmap_png
from model_code.reports.periods import drawdown_periods, monthly_returns
from model_code.settings import pm_home

STRATEGY = "strategy"
# (column, label, format) of the metrics table; the strategy and each baseline are its columns.
METRICS = (
    ("total_return", "total return", h.percent),
    ("cagr", "CAGR", h.percent),
    ("volatility", "volatility (ann.)", h.percent),
    ("sharpe", "Sharpe (ann.)", lambda v: h.number(v, ".2f")),
    ("sortino", "Sortino (ann.)", lambda v: h.number(v, ".2f")),
    ("max_drawdown", "max drawdown", h.percent),
    ("calmar", "Calmar", lambda v: h.number(v, ".2f")),
    ("profit_factor", "profit factor", lambda v: h.number(v, ".2f")),
    ("hit_rate", "hit rate (days up)", h.percent),
    ("information_ratio", "information ratio vs the benchmark", lambda v: h.number(v, ".2f")),
    ("mean_turnover", "mean daily turnover", h.percent),
    ("skewness", "skewness", lambda v: h.number(v, ".2f")),
    ("kurtosis", "kurtosis (non-excess)", lambda v: h.number(v, ".2f")),
    ("psr", "PSR (SR* = 0)", lambda v: h.number(v, ".3f")),
    ("expected_max_sharpe", "SR0: expected max Sharpe of the trials (daily)", lambda v: h.number(v, ".4f")),
    ("dsr", "DSR (deflated Sharpe)", lambda v: h.number(v, ".3f")),
    ("min_track_record_length", "MinTRL (sessions, 95 %)", lambda v: h.number(v, ",.0f")),
    ("n_trials", "trials behind DSR", lambda v: h.number(v, "d")),
    ("n_periods", "sessions scored", lambda v: h.number(v, "d")),
)
SHEET_DPI = 100  # the tearsheet's pictures: sharper than the metadata ones (plots.DPI)
COST_SETTINGS = ("commission_bps", "slippage_bps", "impact_k", "participation_cap", "initial_cash")


def reports_dir() -> Path:
    """Where tearsheets are written: ``$PM_HOME/reports``."""
    return pm_home() / "reports"


def _file_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name) + ".html"


# -- backtest -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class BacktestRows:
    """One run's stored rows: ``run`` is its ``backtest.runs`` row; the frames hold only its rows."""

    run: Mapping[str, object]
    equity: pl.DataFrame
    metrics: pl.DataFrame
    regimes: pl.DataFrame
    capacity: pl.DataFrame

    @property
    def run_id(self) -> str:
        return str(self.run["run_id"])

    def config(self) -> dict:
        raw = self.run.get("config") or "{}"
        return json.loads(raw) if isinstance(raw, str) else dict(raw)  # type: ignore[arg-type]

    def strategies(self) -> list[str]:
        """The strategy first, then the baselines, then anything else the run stored."""
        names = self.equity["strategy"].unique().to_list()
        order = [STRATEGY, *BASELINES]
        return [n for n in order if n in names] + sorted(n for n in names if n not in order)

    def curve(self, strategy: str, column: str = "equity") -> tuple[list[dt.date], list[float]]:
        rows = self.equity.filter(pl.col("strategy") == strategy).sort("date")
        return rows["date"].to_list(), rows[column].to_list()


def load_backtest_rows(wh, run_id: str) -> BacktestRows:
    """The stored rows of ``run_id`` (a ``KeyError`` when no such run is stored)."""
    run = wh.query("SELECT * FROM backtest.runs WHERE run_id = ?", [run_id])
    if run.is_empty():
        raise KeyError(f"no backtest run {run_id!r} in backtest.runs")
    frames = {
        t: wh.query(f"SELECT * FROM backtest.{t} WHERE run_id = ?", [run_id])
        for t in ("equity", "metrics", "regimes", "capacity")
    }
    return BacktestRows(run.row(0, named=True), **frames)


def backtest_figure(rows: BacktestRows, *, small: bool = False) -> bytes:
    """Equity (currency) of the strategy and every baseline over the drawdowns (% below peak);
    ``small`` for asset metadata (tens of KB)."""
    names = rows.strategies()
    equity = {n: rows.curve(n) for n in names}
    drawdown = {n: (d, [-x for x in v]) for n in names for d, v in [rows.curve(n, "drawdown")]}
    size, dpi = ((6.0, 3.8), DPI) if small else ((10.0, 6.0), SHEET_DPI)
    return curves_png(equity, drawdown, title="equity and drawdown vs the baselines", size=size, dpi=dpi)


def _metrics_section(metrics: pl.DataFrame, order: list[str], *, intro: str) -> str:
    """The metrics as rows and the strategies as columns, each row formatted by its metric."""
    by_name = {r["strategy"]: r for r in metrics.iter_rows(named=True)}
    names = [n for n in order if n in by_name]
    head = "".join(f"<th>{h.text(x)}</th>" for x in ["metric", *names])
    body = "".join(
        f"<tr><td>{h.text(label)}</td>"
        + "".join(f"<td>{fmt(by_name[n].get(col))}</td>" for n in names)
        + "</tr>"
        for col, label, fmt in METRICS
    )
    table = f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    return h.section("Metrics with PSR and DSR", h.note(intro), table)


def _calendar_sections(dates: list[dt.date], equity: list[float], who: str) -> list[str]:
    monthly = monthly_returns(dates, equity)
    periods = drawdown_periods(dates, equity)
    heatmap = h.note("no session stored")
    if monthly.height:
        png = monthly_heatmap_png(
            monthly["year"].to_list(), monthly["month"].to_list(), monthly["ret"].to_list()
        )
        heatmap = h.image(png, "monthly returns heatmap") + h.table(
            ["year", "month", "return"],
            monthly.rows(),
            formats={0: lambda v: h.number(v, "d"), 1: lambda v: h.number(v, "d"), 2: h.percent},
        )
    parts = [
        h.section(
            "Monthly returns",
            h.note(f"{who}: each month's last equity over the previous month's (simple returns)."),
            heatmap,
        )
    ]
    rows = [
        [r["start"], r["trough"], r["recovery"], r["depth"], r["sessions"], r["to_trough"]]
        for r in periods.iter_rows(named=True)
    ]
    parts.append(
        h.section(
            "Drawdown periods",
            h.note(
                f"{who}: the deepest drawdowns; start is the peak, recovery the first session back at "
                "the peak (not recovered: still under water), length in sessions from the peak."
            ),
            h.table(
                ["start (peak)", "trough", "recovery", "depth", "length (sessions)", "peak to trough"],
                rows,
                formats={2: lambda v: h.number(v, none="not recovered"), 3: h.percent},
            )
            if rows
            else h.note("no drawdown: the equity never closed below a previous peak"),
        )
    )
    return parts


def _backtest_costs(rows: BacktestRows) -> str:
    config = rows.config()
    settings = {k: str(config[k]) for k in COST_SETTINGS if k in config}
    initial = float(config.get("initial_cash", 0.0)) or None
    lines = []
    for name in rows.strategies():
        part = rows.equity.filter(pl.col("strategy") == name).sort("date")
        paid = float(part["costs"].sum())
        prior = part["equity"].shift(1)
        drag = (part["costs"] / prior).drop_nulls().drop_nans()
        annual = float(drag.mean()) * PERIODS_PER_YEAR if drag.len() else None
        lines.append([name, paid, paid / initial if initial else None, annual, float(part["turnover"].sum())])
    return h.section(
        "Costs",
        h.facts(settings) if settings else h.note("the run's configuration names no cost settings"),
        h.note(
            "Commission and slippage are charged per side in bps of the traded value, impact as "
            "k x sigma x sqrt(participation); total paid in currency over the run."
        ),
        h.table(
            ["strategy", "total costs paid", "of initial equity", "cost drag (ann.)", "total turnover"],
            lines,
            formats={1: h.money, 2: h.percent, 3: h.percent, 4: lambda v: h.number(v, ".2f")},
            row_class=lambda r: "strategy" if r[0] == STRATEGY else "",
        ),
    )


def _capacity_section(capacity: pl.DataFrame) -> str:
    if capacity.is_empty():
        return h.section("Capacity", h.note("no capacity row stored for this run"))
    cols = [
        "strategy",
        "k",
        "aum_edge_vanishes",
        "aum_sharpe_halves",
        "aum_participation_binds",
        "capacity",
        "trades",
        "unpriced_trades",
    ]
    unknown = lambda v: h.number(v, ",.0f", none="unknown (no ADV)", infinite="∞ (never binds)")  # noqa: E731
    return h.section(
        "Capacity",
        h.note(
            "Dollar AUM at which the edge vanishes, the net Sharpe halves and the participation cap "
            "first binds, from the run's own trades; capacity is the smaller of the last two. "
            "unknown: none of the strategy's trades has an ADV to price it."
        ),
        h.table(
            cols,
            capacity.sort("strategy", "k", descending=[False, True]).select(cols).rows(),
            formats={1: lambda v: h.number(v, ".2g"), 2: unknown, 3: unknown, 4: unknown, 5: unknown},
            row_class=lambda r: "strategy" if r[0] == STRATEGY else "",
        ),
    )


def _regime_section(regimes: pl.DataFrame) -> str:
    if regimes.is_empty():
        return h.section("Regimes", h.note("no regime scored for this run"))
    cols = [
        "strategy",
        "regime_kind",
        "regime",
        "n",
        "sharpe_annualized",
        "sharpe",
        "sharpe_se",
        "is_worst",
        "share_positive",
        "heterogeneity_p",
    ]
    return h.section(
        "Regimes",
        h.note(
            "Sharpe per regime (labels known at T-1): annualized, and per period with its standard "
            "error; the kind's worst regime, the share of its regimes with a positive Sharpe and "
            "Cochran's Q p-value (a small p: the Sharpe differs across regimes)."
        ),
        h.table(
            cols,
            regimes.sort("strategy", "regime_kind", "regime").select(cols).rows(),
            formats={
                3: lambda v: h.number(v, "d"),
                4: lambda v: h.number(v, ".2f"),
                5: lambda v: h.number(v, ".4f"),
                6: lambda v: h.number(v, ".4f"),
                8: h.percent,
            },
            row_class=lambda r: "strategy" if r[0] == STRATEGY else "",
        ),
    )


def backtest_html(rows: BacktestRows) -> str:
    """The run's tearsheet as one HTML document (see the module docstring)."""
    run = rows.run
    names = rows.strategies()
    header = h.facts(
        {
            "run id": rows.run_id,
            "created": str(run.get("created_at")),
            "data": f"{run.get('data_start')} to {run.get('data_end')}",
            "tickers": str(run.get("tickers")),
            "git sha": str(run.get("git_sha")),
            "config hash": str(run.get("config_hash")),
            "config": json.dumps(rows.config(), sort_keys=True),
        }
    )
    sections = [h.section("Run", header)]
    if rows.equity.is_empty():
        sections.append(h.note("the run stored no equity rows"))
    else:
        sections.append(
            h.section(
                "Equity and drawdown vs the baselines",
                h.note(
                    "Equity in currency after costs; drawdown below each curve's running peak. "
                    "Baselines: equal_weight (1/N of the universe), inverse_vol (trailing 63-session "
                    "volatility), buy_and_hold (1/N at the first session)."
                ),
                h.image(backtest_figure(rows), "equity and drawdown vs the baselines"),
            )
        )
        dates, equity = rows.curve(names[0])
        sections += _calendar_sections(dates, equity, names[0])
    sections.append(
        _metrics_section(
            rows.metrics,
            names or [STRATEGY, *BASELINES],
            intro="Daily simple returns from the first decision; PSR is the probability the true "
            "Sharpe exceeds 0, DSR the same against the expected maximum Sharpe of every "
            "configuration ever run (backtest.trials). DSR above 0.95: skill survives the trials. "
            "The information ratio's benchmark is equal_weight.",
        )
    )
    sections += [_backtest_costs(rows), _capacity_section(rows.capacity), _regime_section(rows.regimes)]
    return h.page(
        f"Backtest tearsheet: {rows.run_id}",
        "The stored allocations replayed with next-bar fills and costs, beside the baselines.",
        sections,
    )


def write_backtest_tearsheet(rows: BacktestRows, folder: Path | None = None) -> Path:
    """Write :func:`backtest_html` to ``folder`` (default ``$PM_HOME/reports/backtest``)."""
    out = (folder or reports_dir() / "backtest") / _file_name(rows.run_id)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(backtest_html(rows), encoding="utf-8")
    return out


# -- paper --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PaperRows:
    """One account's stored rows (``paper.equity`` with ``backtest_equity``/``drift``,
    ``paper.trades``, ``paper.fills``), its cost settings, and the per-period Sharpes of every
    configuration ever backtested (``backtest.trials``: the N of DSR)."""

    account: str
    equity: pl.DataFrame
    trades: pl.DataFrame
    fills: pl.DataFrame
    settings: Mapping[str, object] = field(default_factory=dict)
    trial_sharpes: tuple[float, ...] = ()


def load_paper_rows(wh, account: str, settings: Mapping[str, object] | None = None) -> PaperRows:
    """The stored rows of ``account``."""
    equity = wh.query("SELECT * FROM paper.equity WHERE account = ? ORDER BY date", [account])
    trades = wh.query("SELECT * FROM paper.trades WHERE account = ? ORDER BY date, ticker, kind", [account])
    fills = wh.query("SELECT * FROM paper.fills WHERE account = ? ORDER BY date, ticker", [account])
    trials = wh.query(
        "SELECT sharpe_per_period FROM backtest.trials WHERE sharpe_per_period IS NOT NULL ORDER BY config_hash"
    )
    sharpes = tuple(float(s) for s in trials["sharpe_per_period"] if math.isfinite(s))
    return PaperRows(account, equity, trades, fills, dict(settings or {}), sharpes)


def _paper_series(rows: PaperRows) -> tuple[list[dt.date], list[float], list[float | None]]:
    eq = rows.equity.sort("date")
    return eq["date"].to_list(), eq["equity"].to_list(), eq["backtest_equity"].to_list()


def paper_figure(rows: PaperRows, *, small: bool = False, lower: str = "drift") -> bytes:
    """The account's equity over its backtest's (currency), above either the drift from it
    (``lower="drift"``: account / backtest - 1) or both drawdowns (``lower="drawdown"``)."""
    dates, equity, bench = _paper_series(rows)
    known = [(d, b) for d, b in zip(dates, bench, strict=True) if b is not None]
    upper = {rows.account: (dates, equity)}
    if known:
        upper["backtest"] = ([d for d, _ in known], [b for _, b in known])
    if lower == "drift":
        drift = rows.equity.sort("date").select("date", "drift").drop_nulls()
        below = {"drift": (drift["date"].to_list(), drift["drift"].to_list())}
        title, label = "paper equity and its drift from the backtest", "drift"
    else:
        below = {name: (d, _drawdown(v)) for name, (d, v) in upper.items()}
        title, label = "paper equity and drawdown vs the backtest", "drawdown"
    size, dpi = ((6.0, 3.8), DPI) if small else ((10.0, 6.0), SHEET_DPI)
    return curves_png(upper, below, lower_label=label, title=title, size=size, dpi=dpi)


def _drawdown(values: list[float]) -> list[float]:
    peak, out = -math.inf, []
    for v in values:
        peak = max(peak, v)
        out.append(v / peak - 1.0)
    return out


def _paper_metrics(rows: PaperRows) -> str:
    eq = rows.equity.sort("date")
    both = eq.select("equity", "backtest_equity").drop_nulls()
    intro = (
        "Daily simple returns between stored sessions; the backtest is the vectorized replay of "
        "the same allocations from the account's first session. DSR deflates by every "
        "configuration ever backtested (backtest.trials)."
    )
    if both.height - 1 < MIN_PERIODS:
        return h.section(
            "Metrics with PSR and DSR",
            h.note(f"{both.height} session(s) with a backtest: the metrics need {MIN_PERIODS + 1}."),
        )
    returns = {
        rows.account: (both["equity"] / both["equity"].shift(1) - 1.0).drop_nulls().to_numpy(),
        "backtest": (both["backtest_equity"] / both["backtest_equity"].shift(1) - 1.0)
        .drop_nulls()
        .to_numpy(),
    }
    table = metrics_table(returns, returns["backtest"], list(rows.trial_sharpes))
    return _metrics_section(
        table, [rows.account, "backtest"], intro=intro + " Information ratio here: vs the backtest."
    )


def _paper_costs(rows: PaperRows) -> str:
    fills = rows.fills
    paid = {c: float(fills[c].sum()) if fills.height else 0.0 for c in ("commission", "slippage", "impact")}
    traded = float(fills["value"].abs().sum()) if fills.height else 0.0
    total = sum(paid.values())
    settings = {k: str(rows.settings[k]) for k in COST_SETTINGS if k in rows.settings}
    table = h.table(
        ["cost", "paid", "bps of traded value"],
        [[k, v, v / traded * 1e4 if traded else None] for k, v in [*paid.items(), ("total", total)]],
        formats={1: lambda v: h.number(v, ",.2f"), 2: lambda v: h.number(v, ".2f")},
    )
    return h.section(
        "Costs",
        h.facts(settings) if settings else "",
        h.note(f"From paper.fills: {fills.height} fill(s), {traded:,.2f} traded in all."),
        table,
    )


def _paper_trades(rows: PaperRows, last: int = 30) -> str:
    trades = rows.trades
    if trades.is_empty():
        return h.section("Trades", h.note("no trade in the journal yet"))
    kinds = (
        trades.group_by("kind")
        .agg(n=pl.len(), amount=pl.col("amount").sum(), realized_pnl=pl.col("realized_pnl").sum())
        .sort("kind")
    )
    cols = ["date", "ticker", "kind", "quantity", "price", "amount", "quantity_after", "realized_pnl"]
    recent = trades.sort("date", "ticker", "kind").tail(last).select(cols)
    two = lambda v: h.number(v, ",.2f")  # noqa: E731
    return h.section(
        "Trades",
        h.note("paper.trades by kind (amount: cash in, + / out, -), then the latest entries."),
        h.table(
            ["kind", "entries", "amount", "realized P&L"],
            kinds.rows(),
            formats={1: lambda v: h.number(v, "d"), 2: two, 3: two},
        ),
        h.table(
            cols,
            recent.rows(),
            formats={
                3: lambda v: h.number(v, ",.4g"),
                4: two,
                5: two,
                6: lambda v: h.number(v, ",.4g"),
                7: two,
            },
        ),
    )


def paper_html(rows: PaperRows) -> str:
    """The account's tearsheet as one HTML document (see the module docstring)."""
    dates, equity, _ = _paper_series(rows)
    sections = []
    if not dates:
        sections.append(h.note("the account has no stored session yet"))
    else:
        last = rows.equity.sort("date").row(-1, named=True)
        sections.append(
            h.section(
                "Account",
                h.facts(
                    {
                        "account": rows.account,
                        "sessions": f"{len(dates)} ({dates[0]} to {dates[-1]})",
                        "equity": f"{last['equity']:,.2f}",
                        "backtest equity": "n/a"
                        if last["backtest_equity"] is None
                        else f"{last['backtest_equity']:,.2f}",
                        "drift from the backtest": "n/a"
                        if last["drift"] is None
                        else f"{last['drift']:+.4%}",
                        "halted": last["halted"] or "no",
                    }
                ),
            )
        )
        sections.append(
            h.section(
                "Equity and drawdown vs the backtest",
                h.note(
                    "The account's equity beside the vectorized backtest of the same allocations "
                    "(one execution model, two callers: they differ by what the ledger does that the "
                    "backtest cannot, e.g. cash dividends against adjusted prices)."
                ),
                h.image(paper_figure(rows, lower="drawdown"), "paper equity and drawdown vs the backtest"),
                h.image(paper_figure(rows, lower="drift"), "paper drift from the backtest"),
            )
        )
        sections += _calendar_sections(dates, equity, rows.account)
    sections += [_paper_metrics(rows), _paper_costs(rows), _paper_trades(rows)]
    return h.page(f"Paper tearsheet: {rows.account}", "The paper account, session by session.", sections)


def write_paper_tearsheet(rows: PaperRows, folder: Path | None = None) -> Path:
    """Write :func:`paper_html` to ``folder`` (default ``$PM_HOME/reports/paper``)."""
    out = (folder or reports_dir() / "paper") / _file_name(rows.account)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(paper_html(rows), encoding="utf-8")
    return out
