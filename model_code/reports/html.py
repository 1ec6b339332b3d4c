"""A small offline HTML page for the tearsheets: inline CSS, escaped text, tables, inline images.

Nothing on the page comes from the network: the style sheet is inline, images are data URIs,
and there is no script, font, favicon or link. Text that came from the data (a config value, a
halt note) is escaped, and ``://`` in it is written ``&#58;//`` so that even a URL quoted in a
note cannot appear as one in the file (the tearsheet test asserts there is none).
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Mapping, Sequence

from model_code.reports.figures import data_uri

CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2rem auto;
       max-width: 1100px; color: #222; line-height: 1.4; padding: 0 1rem; }
h1 { font-size: 1.5rem; margin-bottom: 0.2rem; }
h2 { font-size: 1.15rem; margin-top: 2rem; border-bottom: 1px solid #ddd; padding-bottom: 0.2rem; }
p.note { color: #555; font-size: 0.9rem; }
table { border-collapse: collapse; font-size: 0.85rem; margin: 0.5rem 0 1rem; }
th, td { padding: 0.25rem 0.6rem; border-bottom: 1px solid #eee; text-align: right; }
th { background: #f5f5f5; font-weight: 600; }
td:first-child, th:first-child { text-align: left; }
tr.strategy td { font-weight: 600; }
img { max-width: 100%; height: auto; display: block; margin: 0.5rem 0; }
dl { display: grid; grid-template-columns: max-content auto; gap: 0.15rem 1rem; font-size: 0.9rem; }
dt { color: #555; } dd { margin: 0; }
"""

Formatter = Callable[[object], str]


def text(value: object) -> str:
    """``value`` as HTML text: escaped, and never a URL (``://`` becomes ``&#58;//``)."""
    return html.escape(str(value)).replace("://", "&#58;//")


def number(value: object, spec: str = ".3g", *, none: str = "n/a", infinite: str = "∞") -> str:
    """A cell: ``none`` for NULL, ``NaN`` when undefined, ``infinite`` (signed) when unbounded."""
    if value is None:
        return none
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return infinite if value > 0 else "-" + infinite
        return format(value, spec)
    return text(value)


def percent(value: object) -> str:
    return number(value, ".2%")


def money(value: object) -> str:
    return number(value, ",.0f")


def table(
    header: Sequence[str],
    rows: Sequence[Sequence[object]],
    *,
    formats: Mapping[int, Formatter] | None = None,
    row_class: Callable[[Sequence[object]], str] | None = None,
) -> str:
    """An HTML table; column ``i`` formatted by ``formats[i]`` (default :func:`number`)."""
    formats = formats or {}
    head = "".join(f"<th>{text(h)}</th>" for h in header)
    body = []
    for row in rows:
        cls = row_class(row) if row_class else ""
        cells = "".join(f"<td>{formats.get(i, number)(v)}</td>" for i, v in enumerate(row))
        body.append(f'<tr class="{text(cls)}">{cells}</tr>' if cls else f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def image(png: bytes, alt: str) -> str:
    return f'<img alt="{text(alt)}" src="{data_uri(png)}">'


def facts(items: Mapping[str, object]) -> str:
    """A definition list of ``name: value`` (values already formatted or plain text)."""
    return "<dl>" + "".join(f"<dt>{text(k)}</dt><dd>{text(v)}</dd>" for k, v in items.items()) + "</dl>"


def section(title: str, *parts: str) -> str:
    return f"<section><h2>{text(title)}</h2>{''.join(parts)}</section>"


def note(words: str) -> str:
    return f'<p class="note">{text(words)}</p>'


def page(title: str, subtitle: str, sections: Sequence[str]) -> str:
    """The whole self-contained document."""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{text(title)}</title><style>{CSS}</style></head><body>"
        f"<h1>{text(title)}</h1>{note(subtitle)}{''.join(sections)}</body></html>\n"
    )
