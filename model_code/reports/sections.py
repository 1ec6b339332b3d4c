"""What both tearsheets share: where they are written, the metrics table, the calendar views.

The metrics table shows :data:`METRICS` (columns of :data:`model_code.backtest.metrics.METRIC_COLUMNS`)
as rows and the strategies as columns; the calendar sections are the monthly returns heatmap and
the drawdown periods of one equity curve (:mod:`model_code.reports.periods`).
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import polars as pl

from model_code.reports import html as h
from model_code.reports.figures import monthly_heatmap_png
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


def file_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name) + ".html"


def metrics_section(metrics: pl.DataFrame, order: list[str], *, intro: str) -> str:
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


def calendar_sections(dates: list[dt.date], equity: list[float], who: str) -> list[str]:
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


def write(page: str, folder: Path, name: str) -> Path:
    """``page`` written to ``folder/<name>.html`` (``name`` made safe for a file name)."""
    out = folder / file_name(name)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return out
