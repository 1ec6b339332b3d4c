"""Small PNG charts (matplotlib, Agg) for asset metadata and reports, returned as bytes.

Only matplotlib's object API is used: a ``Figure`` drawn on a ``FigureCanvasAgg``, never
``pyplot`` and its global state, so charts are thread-safe and need no display. Figures are
small (about 6 x 3 inches at 80 dpi: tens of KB) and carry no timestamp, so the same input
gives the same bytes. :func:`markdown_image` turns the bytes into the markdown data-URI image
that Dagster's UI renders inside a markdown metadata value (there is no image metadata kind).
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

DPI = 80
SIZE = (6.0, 3.0)  # inches
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def new_figure(size: tuple[float, float] = SIZE) -> Figure:
    """A figure on its own Agg canvas (no pyplot)."""
    fig = Figure(figsize=size, dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def to_png(fig: Figure) -> bytes:
    """The figure as PNG bytes, without the metadata that would make equal charts differ."""
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


def markdown_image(png: bytes, title: str) -> str:
    """``![title](data:image/png;base64,...)``: an image in a markdown metadata value."""
    if not png.startswith(PNG_MAGIC):
        raise ValueError("not PNG bytes")
    alt = title.replace("[", "(").replace("]", ")")
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})"


def bar_chart(
    labels: Sequence[str],
    values: Sequence[float],
    *,
    title: str,
    xlabel: str = "",
    errors: Sequence[float] | None = None,
) -> bytes:
    """Horizontal bars, the first label on top."""
    fig = new_figure((SIZE[0], max(1.6, 0.28 * len(labels) + 1.0)))
    ax = fig.add_subplot()
    y = np.arange(len(labels))[::-1]
    ax.barh(
        y, np.asarray(values, dtype=float), xerr=None if errors is None else np.asarray(errors, dtype=float)
    )
    ax.set_yticks(y, [str(x) for x in labels], fontsize=7)
    ax.axvline(0.0, color="black", linewidth=0.6)
    ax.set_title(title, fontsize=9)
    ax.set_xlabel(xlabel, fontsize=8)
    return to_png(fig)


def grouped_bar_chart(
    categories: Sequence[str], groups: Mapping[str, Sequence[float]], *, title: str, ylabel: str = ""
) -> bytes:
    """Vertical bars: one cluster per category, one bar per group (legend)."""
    fig = new_figure()
    ax = fig.add_subplot()
    x = np.arange(len(categories))
    width = 0.8 / max(len(groups), 1)
    for i, (name, values) in enumerate(groups.items()):
        ax.bar(x + (i - (len(groups) - 1) / 2) * width, np.asarray(values, dtype=float), width, label=name)
    ax.set_xticks(x, [str(c) for c in categories], fontsize=7)
    ax.set_title(title, fontsize=9)
    ax.set_ylabel(ylabel, fontsize=8)
    if groups:
        ax.legend(fontsize=7)
    return to_png(fig)


def line_chart(
    x: Sequence[Any],
    series: Mapping[str, Sequence[float]],
    *,
    title: str,
    ylabel: str = "",
    reference: float | None = None,
) -> bytes:
    """One line per series over ``x`` (dates or numbers); ``reference`` draws a dashed level."""
    fig = new_figure()
    ax = fig.add_subplot()
    for name, values in series.items():
        ax.plot(
            list(x),
            np.asarray(values, dtype=float),
            linewidth=1.2,
            label=name,
            marker="." if len(x) < 30 else None,
        )
    if reference is not None:
        ax.axhline(reference, color="black", linestyle="--", linewidth=0.8)
    ax.set_title(title, fontsize=9)
    ax.set_ylabel(ylabel, fontsize=8)
    ax.tick_params(labelsize=7)
    fig.autofmt_xdate()
    if series:
        ax.legend(fontsize=7)
    return to_png(fig)


def band_chart(
    x: Sequence[Any],
    median: Sequence[float],
    *,
    lower_80: Sequence[float],
    upper_80: Sequence[float],
    lower_95: Sequence[float],
    upper_95: Sequence[float],
    actual: Sequence[float | None] | None = None,
    title: str,
    ylabel: str = "",
) -> bytes:
    """A forecast's median with its 80 % and 95 % bands, and the actuals as dots where known."""
    fig = new_figure()
    ax = fig.add_subplot()
    xs = list(x)
    f = lambda v: np.asarray([np.nan if a is None else a for a in v], dtype=float)  # noqa: E731
    ax.fill_between(xs, f(lower_95), f(upper_95), alpha=0.2, color="tab:blue", label="95 %")
    ax.fill_between(xs, f(lower_80), f(upper_80), alpha=0.35, color="tab:blue", label="80 %")
    ax.plot(xs, f(median), color="tab:blue", linewidth=1.2, label="forecast")
    if actual is not None:
        ax.plot(xs, f(actual), "o", color="black", markersize=3, label="actual")
    ax.axhline(0.0, color="grey", linewidth=0.5)
    ax.set_title(title, fontsize=9)
    ax.set_ylabel(ylabel, fontsize=8)
    ax.tick_params(labelsize=7)
    fig.autofmt_xdate()
    ax.legend(fontsize=7)
    return to_png(fig)


def calibration_chart(curves: Mapping[str, tuple[Sequence[float], Sequence[float]]], *, title: str) -> bytes:
    """Predicted probability against realized frequency per source; calibrated = the diagonal."""
    fig = new_figure((4.0, 3.5))
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=0.8, label="calibrated")
    for name, (predicted, realized) in curves.items():
        ax.plot(np.asarray(predicted, dtype=float), np.asarray(realized, dtype=float), marker="o", label=name)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("predicted confidence", fontsize=8)
    ax.set_ylabel("realized hit rate", fontsize=8)
    ax.set_title(title, fontsize=9)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7)
    return to_png(fig)
