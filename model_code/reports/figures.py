"""The tearsheets' pictures, and the small ones asset metadata embeds: PNG bytes.

Figures come from :func:`model_code.reporting.plots.new_figure` (the shared helpers of the
metadata charts, whose :func:`~model_code.reporting.plots.markdown_image` embeds them in asset
metadata); this module adds the tearsheets' own charts, a resolution per use (the metadata
pictures at the shared ``DPI``, the HTML ones sharper) and the data URI an HTML ``src`` takes.
Drawn with matplotlib's object API on the Agg canvas (``Figure`` + ``FigureCanvasAgg``), never
``pyplot``: pyplot keeps every figure in a process-wide registry (a leak in a long-lived code
server, and not thread-safe), and depends on the backend chosen at import time. Only stable API
is used (``Figure.subplots``, ``Axes.plot/fill_between/imshow/text``, ``savefig``); the seed's
dashboards broke on a pyplot-era call. PNGs carry no ``Software`` stamp, so the same data gives
the same bytes.

Inputs are plain sequences: dates and values per named series, in order. Equity is in currency,
drawdown a non-positive fraction of the running peak (``-0.1`` = 10 % below it), drift a fraction
(``0.001`` = the account 0.1 % above the backtest).
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import math
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from model_code.reporting.plots import DPI, new_figure

Series = tuple[Sequence[dt.date], Sequence[float]]

# The strategy in a strong colour, baselines in muted ones, so the eye finds the strategy first.
COLOURS = {
    "strategy": "#1f4e9c",
    "paper": "#1f4e9c",
    "equal_weight": "#8c8c8c",
    "inverse_vol": "#d08c2c",
    "buy_and_hold": "#5a9e6f",
    "backtest": "#c0504d",
}
_OTHER = ("#7f5fa8", "#2ca6a4", "#a85f7f", "#5f7fa8")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _figure(size: tuple[float, float]) -> Figure:
    fig = new_figure(size)
    fig.set_layout_engine("constrained")
    return fig


def png_bytes(fig: Figure, *, dpi: float = DPI) -> bytes:
    """``fig`` as PNG bytes at ``dpi`` (no timestamp or software stamp: equal data, equal bytes)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
    return buffer.getvalue()


def data_uri(png: bytes) -> str:
    """``data:image/png;base64,...``: the image inline, for an HTML ``src`` or a markdown image."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _colour(name: str, i: int) -> str:
    return COLOURS.get(name, _OTHER[i % len(_OTHER)])


def _style(ax, *, percent: bool = False) -> None:
    ax.grid(True, color="#e5e5e5", linewidth=0.6)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    if percent:
        ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=None))  # as many as the scale needs


def curves_png(
    upper: Mapping[str, Series],
    lower: Mapping[str, Series],
    *,
    upper_label: str = "equity",
    lower_label: str = "drawdown",
    title: str = "",
    size: tuple[float, float] = (9.0, 5.6),
    dpi: float = DPI,
    fill_first: bool = True,
) -> bytes:
    """Two stacked panels sharing the date axis: ``upper`` (equity in currency) and ``lower``
    (fractions, drawn in %; drawdown, or drift). The first series of ``lower`` is filled to zero
    when ``fill_first``; the first series of each panel is drawn thicker."""
    fig = _figure(size)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(2.2, 1.0))
    for i, (name, (dates, values)) in enumerate(upper.items()):
        top.plot(dates, values, label=name, color=_colour(name, i), linewidth=1.8 if i == 0 else 1.0)
    for i, (name, (dates, values)) in enumerate(lower.items()):
        colour = _colour(name, i)
        if i == 0 and fill_first:
            bottom.fill_between(dates, values, 0.0, color=colour, alpha=0.25, linewidth=0)
        bottom.plot(dates, values, label=name, color=colour, linewidth=1.4 if i == 0 else 0.9)
    bottom.axhline(0.0, color="#444444", linewidth=0.6)
    _style(top)
    _style(bottom, percent=True)
    top.set_ylabel(upper_label)
    bottom.set_ylabel(lower_label)
    if upper:
        top.legend(loc="upper left", fontsize="small", frameon=False, ncols=min(len(upper), 4))
    if len(lower) > 1 and not set(lower) <= set(upper):  # same names, same colours: one legend
        bottom.legend(loc="lower left", fontsize="small", frameon=False, ncols=min(len(lower), 4))
    if title:
        top.set_title(title, fontsize="medium", loc="left")
    fig.autofmt_xdate()
    return png_bytes(fig, dpi=dpi)


def monthly_heatmap_png(
    years: Sequence[int], months: Sequence[int], returns: Sequence[float], *, dpi: float = 100
) -> bytes:
    """A year x month grid of monthly simple returns (fractions), each cell labelled in %,
    red below zero and green above, on a colour scale symmetric around zero."""
    rows = sorted(set(years))
    grid = np.full((max(len(rows), 1), 12), np.nan)
    for y, m, r in zip(years, months, returns, strict=True):
        grid[rows.index(y), m - 1] = r
    finite = np.abs(grid[np.isfinite(grid)])
    scale = float(finite.max()) if finite.size and finite.max() > 0 else 0.01
    fig = _figure((9.0, 0.9 + 0.42 * max(len(rows), 1)))
    ax = fig.subplots()
    ax.imshow(np.ma.masked_invalid(grid), cmap="RdYlGn", vmin=-scale, vmax=scale, aspect="auto")
    for (i, j), value in np.ndenumerate(grid):
        if math.isfinite(value):
            ax.text(j, i, f"{value:+.1%}", ha="center", va="center", fontsize="small")
    ax.set_xticks(range(12), MONTHS)
    ax.set_yticks(range(len(rows)), [str(y) for y in rows])
    ax.tick_params(length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    ax.set_title("monthly returns", fontsize="medium", loc="left")
    return png_bytes(fig, dpi=dpi)
