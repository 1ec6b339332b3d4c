"""Which decayed pairs a refit is asked for, and the refit request they make.

Statistical models are fitted per (ticker, model), so their decay is listed per ticker: a
pair is ``(model, ticker)`` with the horizons that decayed. The ML models are fitted once per
family and horizon on the whole cross-section, so they are judged on their pooled row: a pair
is ``(model, '*', horizon)``. A refit is requested only for pairs that *crossed* their
threshold at the evaluated session (see :func:`model_code.monitoring.decay.mark_crossed`).

A refit request is plain JSON, the same shape in the monitoring metadata and in the sensor::

    {"statistical": {"arima": ["AAPL", "MSFT"]}, "ml": {"lgbm": [5, 21]}}
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import polars as pl

from model_code.monitoring.decay import ML, POOLED, STATISTICAL

RefitRequest = dict[str, dict[str, list]]


def listed_pairs(health: pl.DataFrame) -> pl.DataFrame:
    """The decayed rows a refit can act on: statistical per ticker, ML pooled."""
    statistical = (pl.col("family") == STATISTICAL) & (pl.col("ticker") != POOLED)
    ml = (pl.col("family") == ML) & (pl.col("ticker") == POOLED)
    return health.filter(pl.col("decayed") & (statistical | ml)).sort("family", "model", "ticker", "horizon")


def refit_request(health: pl.DataFrame, crossed_only: bool = True) -> RefitRequest:
    """``{"statistical": {model: [tickers]}, "ml": {model: [horizons]}}`` of the listed pairs
    (only those that crossed, by default); families with nothing to refit are left out."""
    pairs = listed_pairs(health)
    if crossed_only:
        pairs = pairs.filter(pl.col("crossed").fill_null(False))
    out: RefitRequest = {}
    for family, column in ((STATISTICAL, "ticker"), (ML, "horizon")):
        rows = pairs.filter(pl.col("family") == family)
        if rows.height:
            grouped = rows.group_by("model").agg(pl.col(column).unique().sort()).sort("model")
            out[family] = {m: list(v) for m, v in grouped.iter_rows()}
    return out


def merge_requests(requests: Iterable[Mapping[str, Mapping[str, Iterable[Any]]]]) -> RefitRequest:
    """The union of several refit requests, families, models and members sorted."""
    merged: dict[str, dict[str, set]] = {}
    for request in requests:
        for family, models in (request or {}).items():
            for model, members in models.items():
                merged.setdefault(family, {}).setdefault(model, set()).update(members)
    return {f: {m: sorted(v) for m, v in sorted(ms.items())} for f, ms in sorted(merged.items())}


def pairs_records(pairs: pl.DataFrame) -> list[dict[str, Any]]:
    """Listed pairs as JSON-ready records (floats rounded to 4 decimals)."""
    cols = [
        "family",
        "model",
        "ticker",
        "horizon",
        "n",
        "hit_rate",
        "up_rate",
        "rmse_ratio",
        "crossed",
        "reason",
    ]
    return [
        {k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()}
        for row in pairs.select(cols).iter_rows(named=True)
    ]


def pairs_markdown(pairs: pl.DataFrame) -> str:
    """Listed pairs as a markdown table (or a sentence when there are none)."""
    if pairs.is_empty():
        return "no model has decayed"
    lines = [
        "| family | model | ticker | horizon | n | hit rate | up rate | RMSE ratio | new | reason |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | --- | --- |",
    ]

    def num(v: float | None) -> str:
        return "" if v is None else f"{v:.3f}"

    for r in pairs.iter_rows(named=True):
        lines.append(
            f"| {r['family']} | {r['model']} | {r['ticker']} | {r['horizon']} | {r['n'] or 0} | "
            f"{num(r['hit_rate'])} | {num(r['up_rate'])} | {num(r['rmse_ratio'])} | "
            f"{'yes' if r['crossed'] else 'no'} | {r['reason'] or ''} |"
        )
    return "\n".join(lines)
