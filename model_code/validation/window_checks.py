"""Verdicts on one ingested window, computed from what was quarantined, found and *stored*.

Each verdict names a check, says whether it passed, whether a failure must block downstream
(``blocking``), and carries numbers for the UI. The row rules already keep bad rows out of
``market.ohlcv``; these checks prove it on the stored data and watch the rates, so a broken
source (e.g. half its rows quarantined) stops the pipeline instead of thinning it silently.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from model_code.market_data.ingestion import IngestionReport

SCHEMA_REASONS = ("unparseable_value", "missing_key", "missing_close", "non_finite_value", "non_trading_day")
DUPLICATE_REASONS = ("conflicting_duplicate", "duplicate_key")
PRICE_REASONS = (
    "non_positive_price",
    "price_below_minimum",
    "high_below_open_close",
    "low_above_open_close",
    "price_spike",
)


@dataclass(frozen=True)
class CheckSpec:
    name: str
    description: str
    blocking: bool


CHECKS: tuple[CheckSpec, ...] = (
    CheckSpec(
        "ohlcv_schema",
        "Stored bars have keys, finite closes and session dates; counts of rows quarantined for schema/type faults.",
        True,
    ),
    CheckSpec(
        "ohlcv_duplicates", "No (ticker, date) stored twice; counts of duplicate rows quarantined.", True
    ),
    CheckSpec(
        "ohlcv_price_consistency",
        "Stored bars have high >= max(open, close), low <= min(open, close), prices above the minimum; counts quarantined.",
        True,
    ),
    CheckSpec(
        "ohlcv_quarantine_rate",
        "Share of received rows quarantined stays under the configured maximum (a broken source blocks downstream).",
        True,
    ),
    CheckSpec("ohlcv_calendar_gaps", "Trading sessions missing between a ticker's bars.", False),
    CheckSpec(
        "ohlcv_jumps",
        "Jumps beyond the threshold that did not revert, bad adjustments, and detected splits.",
        False,
    ),
    CheckSpec(
        "ohlcv_staleness",
        "Active tickers whose latest bar is older than N sessions at the window's end, and tickers no source served.",
        False,
    ),
    CheckSpec("ohlcv_volume", "Zero-volume bars kept, negative volumes quarantined.", False),
)


@dataclass
class CheckVerdict:
    name: str
    passed: bool
    blocking: bool
    metadata: dict[str, float | int | str] = field(default_factory=dict)
    description: str = ""


def window_verdicts(
    report: IngestionReport,
    stored: dict[str, int],
    stale: dict[str, int | None],
    *,
    max_quarantine_fraction: float,
    stale_after_sessions: int,
    as_of: dt.date,
) -> list[CheckVerdict]:
    """All verdicts of :data:`CHECKS` for one window.

    Args:
        report: the ingestion report (quarantine and finding counts).
        stored: violation counts on the stored window (``ohlcv_window_violations.sql``) plus
            ``duplicate_keys`` (always 0 under the primary key, checked anyway).
        stale: ticker → sessions behind (``None`` = no bar at all), already thresholded.
    """
    q = report.validation.quarantine_counts() if report.validation else {}
    f = report.validation.finding_counts() if report.validation else {}
    spec = {c.name: c for c in CHECKS}

    def verdict(name: str, passed: bool, metadata: dict, description: str = "") -> CheckVerdict:
        return CheckVerdict(name, passed, spec[name].blocking, metadata, description)

    schema_bad = sum(stored[k] for k in ("non_finite_value", "non_trading_day"))
    price_bad = sum(stored[k] for k in PRICE_REASONS if k in stored) + stored["negative_volume"]
    stale_names = sorted(stale)
    return [
        verdict(
            "ohlcv_schema",
            schema_bad == 0,
            {"stored_violations": schema_bad, **{f"quarantined_{r}": q.get(r, 0) for r in SCHEMA_REASONS}},
        ),
        verdict(
            "ohlcv_duplicates",
            stored["duplicate_keys"] == 0,
            {
                "stored_duplicate_keys": stored["duplicate_keys"],
                **{f"quarantined_{r}": q.get(r, 0) for r in DUPLICATE_REASONS},
            },
        ),
        verdict(
            "ohlcv_price_consistency",
            price_bad == 0,
            {"stored_violations": price_bad, **{f"quarantined_{r}": q.get(r, 0) for r in PRICE_REASONS}},
        ),
        verdict(
            "ohlcv_quarantine_rate",
            report.quarantine_fraction <= max_quarantine_fraction,
            {
                "quarantine_fraction": report.quarantine_fraction,
                "max_fraction": max_quarantine_fraction,
                "rows_received": report.rows_received,
                "rows_quarantined": report.rows_quarantined,
            },
        ),
        verdict("ohlcv_calendar_gaps", f.get("calendar_gap", 0) == 0, {"gaps": f.get("calendar_gap", 0)}),
        verdict(
            "ohlcv_jumps",
            f.get("jump", 0) + f.get("adjustment_jump", 0) == 0,
            {
                "jumps": f.get("jump", 0),
                "adjustment_jumps": f.get("adjustment_jump", 0),
                "splits": f.get("split", 0),
                "spikes_quarantined": q.get("price_spike", 0),
            },
        ),
        verdict(
            "ohlcv_staleness",
            not stale and not report.failures,
            {
                "stale_tickers": len(stale),
                "max_sessions": stale_after_sessions,
                "as_of": as_of.isoformat(),
                "stale_examples": ", ".join(
                    f"{t} ({'no bars' if stale[t] is None else f'{stale[t]} sessions'})"
                    for t in stale_names[:10]
                ),
                "tickers_requested": report.tickers_requested,
                "tickers_served": len(report.served_by),
                "tickers_failed": len(report.failures),
                "failures": "; ".join(
                    f"{t}: {' | '.join(r)}" for t, r in sorted(report.failures.items())[:10]
                ),
            },
        ),
        verdict(
            "ohlcv_volume",
            q.get("negative_volume", 0) == 0 and f.get("zero_volume", 0) == 0,
            {
                "zero_volume_bars": f.get("zero_volume", 0),
                "quarantined_negative_volume": q.get("negative_volume", 0),
            },
        ),
    ]
