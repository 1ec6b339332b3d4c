"""Tearsheets: one self-contained HTML file per backtest run and one per paper account.

Written under ``$PM_HOME/reports/`` (:func:`reports_dir`): ``backtest/<run_id>.html`` from the
run's stored rows (``backtest.runs``, ``equity``, ``metrics``, ``regimes``, ``capacity``) and
``paper/<account>.html`` from ``paper.equity`` (with its ``backtest_equity`` and ``drift``),
``paper.trades`` and ``paper.fills``. Each holds equity and drawdown against the baselines, the
monthly returns heatmap, the drawdown periods, the metrics with PSR and DSR
(:mod:`model_code.backtest.metrics`), the costs, and for a backtest its capacity and regime
tables. The files open offline: inline CSS, images as base64 PNG data URIs, no script and no
link (:mod:`model_code.reports.html`).

This module is the backtest's (:func:`backtest_html`, :func:`write_backtest_tearsheet`) and
re-exports the paper account's, from :mod:`model_code.reports.paper_tearsheet`; what both share
is in :mod:`model_code.reports.sections`. The loaders read through a
:class:`~model_code.warehouse.Warehouse`; the builders are pure functions of the rows, so a test
can hand them a synthetic run.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from model_code.backtest.metrics import PERIODS_PER_YEAR
from model_code.backtest.runs import BASELINES
from model_code.reporting.plots import DPI
from model_code.reports import html as h
from model_code.reports.figures import curves_png
from model_code.reports.paper_tearsheet import (
    PaperRows,
    load_paper_rows,
    paper_figure,
    paper_html,
    write_paper_tearsheet,
)
from model_code.reports.sections import (
    COST_SETTINGS,
    SHEET_DPI,
    STRATEGY,
    calendar_sections,
    metrics_section,
    reports_dir,
    write,
)

__all__ = [
    "BacktestRows",
    "PaperRows",
    "backtest_figure",
    "backtest_html",
    "load_backtest_rows",
    "load_paper_rows",
    "paper_figure",
    "paper_html",
    "reports_dir",
    "write_backtest_tearsheet",
    "write_paper_tearsheet",
]


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
        sections += calendar_sections(dates, equity, names[0])
    sections.append(
        metrics_section(
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
    return write(backtest_html(rows), folder or reports_dir() / "backtest", rows.run_id)
