"""Verdicts on one ingested window, computed from what was quarantined, found and *stored*.

Each verdict names a check, says whether it passed, whether a failure must block downstream
(``blocking``), and carries numbers for the UI. The row rules already keep bad rows out of
``market.ohlcv``; these checks prove it on the stored data and watch the rates, so a broken
source (e.g. half its rows quarantined) stops the pipeline instead of thinning it silently.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import polars as pl

from model_code.market_data.ingestion import IngestionReport

SCHEMA_REASONS = (
    "unparseable_value",
    "unparseable_date",
    "missing_key",
    "missing_close",
    "non_finite_value",
    "non_trading_day",
)
DUPLICATE_REASONS = ("conflicting_duplicate", "duplicate_key")
PRICE_REASONS = (
    "non_positive_price",
    "price_below_minimum",
    "high_below_open_close",
    "low_above_open_close",
    "price_spike",
)
EXAMPLES = 10  # listed in a check's metadata, the rest counted


@dataclass(frozen=True)
class CheckSpec:
    """A check: whether its failure blocks downstream assets, and the severity it fails with
    (``error`` for blocking checks; a non-blocking check may fail with ``error`` too)."""

    name: str
    description: str
    blocking: bool
    error: bool = False

    @property
    def severity(self) -> str:
        return "error" if self.blocking or self.error else "warn"


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
    CheckSpec(
        "ohlcv_sources_available",
        "Something arrived from the sources asked: fails (ERROR) when no bar arrived because sources failed or were down, with on_outage=error_check (the window is then not materialized, so downstream steps skip; by default the run fails instead); tickers left unserved by a down source are listed.",
        False,
        error=True,
    ),
    CheckSpec(
        "ohlcv_restatements",
        "Stored bars re-delivered with other values: each recorded in market.ohlcv_revisions, replaced or quarantined by the restatement policy.",
        False,
    ),
)


@dataclass
class CheckVerdict:
    name: str
    passed: bool
    blocking: bool
    metadata: dict[str, float | int | str] = field(default_factory=dict)
    description: str = ""
    severity: str = ""  # "error" or "warn"; empty: "error" if blocking else "warn"

    def __post_init__(self) -> None:
        self.severity = self.severity or ("error" if self.blocking else "warn")


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
        return CheckVerdict(name, passed, spec[name].blocking, metadata, description, spec[name].severity)

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
                "rows_held": report.rows_held,
                "rows_outside_window": report.rows_outside_window,
            },
        ),
        verdict("ohlcv_calendar_gaps", f.get("calendar_gap", 0) == 0, {"gaps": f.get("calendar_gap", 0)}),
        verdict(
            "ohlcv_jumps",
            f.get("jump", 0) + f.get("adjustment_jump", 0) + report.rows_held == 0,
            {
                "jumps": f.get("jump", 0),
                "adjustment_jumps": f.get("adjustment_jump", 0),
                "splits": f.get("split", 0),
                "spikes_quarantined": q.get("price_spike", 0),
                "jumps_held": report.rows_held,
                "held_released": report.held_released,
                "held_rejected": report.held_rejected,
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
        sources_verdict(report, spec["ohlcv_sources_available"]),
        restatements_verdict(report, spec["ohlcv_restatements"]),
    ]


def sources_verdict(report: IngestionReport, spec: CheckSpec) -> CheckVerdict:
    """Fails on an outage (nothing arrived because every source asked failed or was down);
    lists, per ticker, the sources that were down for tickers nobody served (partial outage)."""
    down = sorted(report.unavailable.items())
    return CheckVerdict(
        spec.name,
        not report.outage,
        spec.blocking,
        severity=spec.severity,
        metadata={
            "sources_failed": len(report.outage),
            "source_errors": "; ".join(f"{s}: {e}" for s, e in sorted(report.outage.items())),
            "tickers_unavailable": len(down),
            "unavailable": "; ".join(
                f"{t}: {' | '.join(f'{s}: {r}' for s, r in reasons.items())}"
                for t, reasons in down[:EXAMPLES]
            ),
        },
    )


def restatements_verdict(report: IngestionReport, spec: CheckSpec) -> CheckVerdict:
    """Fails (warn) when stored bars were re-delivered with other values."""
    revised = report.validation.revisions if report.validation else None
    n = revised.height if revised is not None else 0
    meta: dict[str, float | int | str] = {"bars_restated": n}
    if revised is not None and n:
        findings = report.validation.findings.filter(pl.col("kind") == "restated")
        meta |= {
            "replaced": revised.filter(pl.col("action") == "replaced").height,
            "quarantined": revised.filter(pl.col("action") == "quarantined").height,
            "tickers_restated": revised.get_column("ticker").n_unique(),
            "max_relative_price_change": revised.select(
                pl.max_horizontal(
                    (pl.col(f"new_{c}") - pl.col(f"old_{c}")).abs() / pl.col(f"old_{c}").abs()
                    for c in ("open", "high", "low", "close", "adj_close")
                ).max()
            ).item()
            or 0.0,
            "examples": "; ".join(
                f"{t} {d}: {detail}"
                for t, d, detail in findings.select("ticker", "date", "detail").head(EXAMPLES).iter_rows()
            ),
        }
    return CheckVerdict(spec.name, n == 0, spec.blocking, meta, severity=spec.severity)
