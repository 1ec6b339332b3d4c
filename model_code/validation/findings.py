"""Series-level findings over accepted bars: problems of a series, not of one bar.

Kinds (severity):
- ``calendar_gap`` (warn): trading sessions with no bar between two bars of a ticker.
- ``jump`` (warn): close and adjusted close both move beyond the jump threshold and do not
  revert: a genuine crash/rally, or a split the vendor did not adjust.
- ``adjustment_jump`` (warn): the adjusted close jumps while the raw close does not: a bad
  corporate-action adjustment (spin-off, special dividend).
- ``split`` (info): the raw close jumps while the adjusted close does not: a split that the
  adjusted series absorbed correctly.
- ``zero_volume`` (warn): a bar with volume 0 (no trade printed that day).

They are measured on the series as it will be stored (:func:`stored_series`), and recomputed for
every stored bar a write can affect. Ingestion also writes findings about a bar's history
(:data:`HISTORY_KINDS`: ``restated``, ``jump_released``), which are never recomputed.
"""

from __future__ import annotations

import polars as pl

from model_code.market_data.calendar import TradingCalendar
from model_code.validation.stored import StoredBars

FINDING_SCHEMA: dict[str, pl.DataType] = {
    "ticker": pl.String(),
    "date": pl.Date(),
    "kind": pl.String(),
    "severity": pl.String(),
    "detail": pl.String(),
}


# The kinds series_findings computes: recomputed (replaced) for every bar it looks at.
SERIES_KINDS: tuple[str, ...] = ("calendar_gap", "jump", "adjustment_jump", "split", "zero_volume")
# Kinds about a bar's history, written by ingestion and never recomputed (see docs/validation.md):
# a stored bar re-delivered with other values, and a held jump that its next bar confirmed.
HISTORY_KINDS: dict[str, str] = {"restated": "warn", "jump_released": "info"}


def stored_series(written: pl.DataFrame, stored: StoredBars) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The series as it will be stored around the batch (for findings), and the keys emitted.

    ``written`` (accepted and released bars) replaces stored bars of the same key; the stored
    bars of the window and the first after it are emitted too, so their gaps and jumps are
    measured against the stored series after the write (stale findings are replaced); the last
    bar before the window is context only.
    """
    cols = ["ticker", "date", "close", "adj_close", "volume"]
    parts = [written.select(cols).with_columns(_emit=pl.lit(True))]
    for part, emit in ((stored.previous, False), (stored.window, True), (stored.following, True)):
        if part is not None and part.height:
            frame = part if "volume" in part.columns else part.with_columns(volume=pl.lit(None, pl.Float64()))
            parts.append(
                frame.select(cols)
                .join(written, on=["ticker", "date"], how="anti")
                .with_columns(_emit=pl.lit(emit))
            )
    series = pl.concat(parts, how="vertical_relaxed")
    return series, series.filter("_emit").select("ticker", "date")


def series_findings(
    series: pl.DataFrame,
    *,
    rules,  # ValidationRules; untyped here to avoid a circular import
    calendar: TradingCalendar,
) -> pl.DataFrame:
    """Findings of the bars of ``series`` flagged ``_emit``, the others being their context.

    Args:
        series: ``ticker, date, close, adj_close, volume, _emit``; at most one bar per (ticker,
            date), as the ticker's series will be stored (e.g. the last stored bar before a
            window as context, then the window's bars), so a gap or a jump is measured against
            the bar before it in the stored series, not in the batch alone.
    """
    cols = ["ticker", "date", "close", "adj_close", "volume"]
    series = series.select(*cols, _ctx=~pl.col("_emit"))
    if not series.height:
        return pl.DataFrame(schema=FINDING_SCHEMA)
    series = series.sort("ticker", "date")
    ordinal = calendar.session_index(series.get_column("date").to_numpy().astype("datetime64[D]"))
    limit = rules.jump_log_return
    adj = pl.coalesce("adj_close", "close")
    series = (
        series.with_columns(_ord=pl.Series(ordinal, dtype=pl.Int64()))
        .with_columns(
            _prev_date=pl.col("date").shift(1).over("ticker"),
            _missing=(pl.col("_ord") - pl.col("_ord").shift(1).over("ticker") - 1),
            _r_adj=(adj / adj.shift(1)).log().over("ticker"),
            _r_close=(pl.col("close") / pl.col("close").shift(1)).log().over("ticker"),
        )
        .filter(~pl.col("_ctx"))
    )

    big_adj = pl.col("_r_adj").abs() > limit
    big_close = pl.col("_r_close").abs() > limit
    fmt = lambda e: e.round(3).cast(pl.String)  # noqa: E731
    kinds = [
        (
            "calendar_gap",
            "warn",
            pl.col("_missing") > 0,
            pl.format("{} session(s) without a bar since {}", pl.col("_missing"), pl.col("_prev_date")),
        ),
        (
            "jump",
            "warn",
            big_adj & big_close,
            pl.format(
                "log return {} (close {}) with no reversal", fmt(pl.col("_r_adj")), fmt(pl.col("_r_close"))
            ),
        ),
        (
            "adjustment_jump",
            "warn",
            big_adj & ~big_close,
            pl.format(
                "adj_close log return {} while close moved {}", fmt(pl.col("_r_adj")), fmt(pl.col("_r_close"))
            ),
        ),
        (
            "split",
            "info",
            big_close & ~big_adj,
            pl.format("close ratio {} absorbed by adj_close", fmt(pl.col("_r_close").exp())),
        ),
        ("zero_volume", "warn", pl.col("volume") == 0, pl.lit("volume is 0")),
    ]
    found = [
        series.filter(cond.fill_null(False)).select(
            "ticker", "date", kind=pl.lit(kind), severity=pl.lit(sev), detail=detail
        )
        for kind, sev, cond, detail in kinds
    ]
    return pl.concat(found, how="vertical_relaxed").cast(FINDING_SCHEMA).sort("ticker", "date", "kind")
