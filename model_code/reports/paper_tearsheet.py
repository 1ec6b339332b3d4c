"""The paper account's tearsheet: ``$PM_HOME/reports/paper/<account>.html``.

From the account's stored rows: ``paper.equity`` (with ``backtest_equity``, the vectorized
backtest of the same allocations, and ``drift``, account / backtest - 1), ``paper.trades`` and
``paper.fills``; the metrics' DSR deflates by every configuration in ``backtest.trials``. Same
page rules as the backtest's (:mod:`model_code.reports.tearsheet`): offline, inline PNGs.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from model_code.backtest.metrics import MIN_PERIODS, metrics_table
from model_code.reporting.plots import DPI
from model_code.reports import html as h
from model_code.reports.figures import curves_png
from model_code.reports.sections import (
    COST_SETTINGS,
    SHEET_DPI,
    calendar_sections,
    metrics_section,
    reports_dir,
    write,
)


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
    return metrics_section(
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
        sections += calendar_sections(dates, equity, rows.account)
    sections += [_paper_metrics(rows), _paper_costs(rows), _paper_trades(rows)]
    return h.page(f"Paper tearsheet: {rows.account}", "The paper account, session by session.", sections)


def write_paper_tearsheet(rows: PaperRows, folder: Path | None = None) -> Path:
    """Write :func:`paper_html` to ``folder`` (default ``$PM_HOME/reports/paper``)."""
    return write(paper_html(rows), folder or reports_dir() / "paper", rows.account)
