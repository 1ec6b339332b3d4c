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
"""

from __future__ import annotations

import polars as pl

from model_code.market_data.calendar import TradingCalendar

FINDING_SCHEMA: dict[str, pl.DataType] = {
    "ticker": pl.String(),
    "date": pl.Date(),
    "kind": pl.String(),
    "severity": pl.String(),
    "detail": pl.String(),
}


def series_findings(
    accepted: pl.DataFrame,
    *,
    rules,  # ValidationRules; untyped here to avoid a circular import
    calendar: TradingCalendar,
    previous: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Findings for ``accepted`` bars, using ``previous`` (last stored bar per ticker) as context."""
    cols = ["ticker", "date", "close", "adj_close", "volume"]
    series = accepted.select(cols).with_columns(_ctx=pl.lit(False))
    if previous is not None and previous.height:
        ctx = previous.select("ticker", "date", "close", "adj_close").with_columns(
            volume=pl.lit(None, dtype=pl.Float64()), _ctx=pl.lit(True)
        )
        series = pl.concat([ctx.select(*cols, "_ctx"), series], how="vertical_relaxed")
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
