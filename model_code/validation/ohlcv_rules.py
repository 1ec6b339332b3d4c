"""Row rules for daily bars: each failing row is quarantined with one reason, never dropped.

Rules run in the order of :data:`QUARANTINE_REASONS`; a row gets the first reason it fails
(the ``detail`` column lists every rule it failed). Rows that pass every rule are accepted.
Series-level problems that do not make a bar wrong on its own (calendar gaps, jumps that do
not revert, detected splits, zero volume) are *findings*: reported, stored, not rejected.

After the row rules, two decisions need what is already stored (:class:`StoredBars`): a bar
re-delivered with other values is a restatement (:mod:`.restatements`), and a move beyond the
jump threshold waits for its next bar (:mod:`.jumps`): a spike if that bar reverts it, kept if
not, held (``unconfirmed_jump``) while there is no next bar yet.

Returns are log returns of the adjusted close (the raw close where no adjusted close exists).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import polars as pl

from model_code.market_data.calendar import TradingCalendar, trading_calendar
from model_code.market_data.schema import OHLCV_COLUMNS, OHLCV_SCHEMA, PRICE_COLUMNS, unparseable_column
from model_code.validation import jumps
from model_code.validation.findings import FINDING_SCHEMA, series_findings, stored_series
from model_code.validation.restatements import (
    POLICIES,
    REVISION_SCHEMA,
    restated_rows,
    restatement_findings,
    revisions,
)
from model_code.validation.stored import StoredBars

QUARANTINE_REASONS: dict[str, str] = {
    "unparseable_value": "a value could not be read as its column's type",
    "unparseable_date": "the date is not in the source's date format (ISO 8601 unless configured)",
    "missing_key": "ticker or date is missing",
    "missing_close": "close is missing or not a finite number",
    "non_finite_value": "a price or volume is NaN or infinite",
    "non_trading_day": "the date is not a trading session of the exchange calendar",
    "conflicting_duplicate": "the same ticker and date arrived more than once with different prices",
    "duplicate_key": "an exact repeat (same prices) of a ticker and date already in the batch",
    "non_positive_price": "a price is zero or negative",
    "price_below_minimum": "a price is below the configured minimum (not a real quote)",
    "high_below_open_close": "high is below the open or the close",
    "low_above_open_close": "low is above the open or the close",
    "negative_volume": "volume is negative",
    "restated_bar": "a stored bar re-delivered with other values, under the quarantine policy",
    "price_spike": "a one-bar jump beyond the threshold that reverts on the next bar",
    "unconfirmed_jump": "a jump beyond the threshold whose next bar has not arrived yet (held)",
}
QUARANTINE_COLUMNS: tuple[str, ...] = (
    "quarantine_id",
    "ticker",
    "date",
    "source",
    "reason",
    "detail",
    *PRICE_COLUMNS,
    "volume",
)


@dataclass(frozen=True)
class ValidationRules:
    """Thresholds of the rules, with their units.

    Attributes:
        min_price: lowest credible price, USD. Quotes of a few tenths of a cent in large-cap
            data are vendor placeholders, not trades.
        jump_log_return: |log return| beyond which a move is a jump (0.5 ≈ -39 % / +65 %).
        price_tolerance: relative slack for high/low comparisons (float rounding at source).
        restatement_policy: what a re-delivered bar with other values does: ``replace`` the
            stored bar (and record the revision) or ``quarantine`` it as ``restated_bar``.
        restatement_tolerance: relative difference under which a re-delivered value is the
            stored one (float noise of a round trip through text, not a correction).
    """

    min_price: float = 0.05
    jump_log_return: float = 0.5
    price_tolerance: float = 1e-6
    restatement_policy: str = "replace"
    restatement_tolerance: float = 1e-9

    def __post_init__(self) -> None:
        if self.restatement_policy not in POLICIES:
            raise ValueError(f"restatement_policy must be one of {POLICIES}, not {self.restatement_policy!r}")


def _empty(schema: dict[str, pl.DataType] | list[str]) -> pl.DataFrame:
    return pl.DataFrame(schema=schema)


@dataclass
class ValidationResult:
    """A batch split three ways. Every input row is in exactly one of the first two frames.

    Attributes:
        accepted: batch rows to store (OHLCV columns).
        quarantined: batch rows rejected, with the reason (held jumps: ``unconfirmed_jump``).
        findings: series findings of ``refreshed`` keys, and history findings (``restated``,
            ``jump_released``).
        released: bars held by earlier runs that this batch confirmed: stored too.
        rejected_held: bars held by earlier runs that this batch reverted: quarantine rows
            (``price_spike``), as a run over both sessions at once would have written them.
        resolved_held: (ticker, date) of the held rows that ``released`` / ``rejected_held``
            replace (to delete).
        revisions: re-delivered bars that differ from the stored ones (``market.ohlcv_revisions``
            columns but ``ingested_at``).
        refreshed: (ticker, date) of every bar whose series findings were computed here; the
            stored findings of those kinds for these keys are replaced.
    """

    accepted: pl.DataFrame
    quarantined: pl.DataFrame
    findings: pl.DataFrame = field(default_factory=lambda: _empty(FINDING_SCHEMA))
    released: pl.DataFrame = field(default_factory=lambda: _empty(OHLCV_SCHEMA))
    rejected_held: pl.DataFrame = field(default_factory=lambda: _empty(list(QUARANTINE_COLUMNS)))
    resolved_held: pl.DataFrame = field(
        default_factory=lambda: _empty({"ticker": pl.String(), "date": pl.Date()})
    )
    revisions: pl.DataFrame = field(default_factory=lambda: _empty(REVISION_SCHEMA))
    refreshed: pl.DataFrame = field(
        default_factory=lambda: _empty({"ticker": pl.String(), "date": pl.Date()})
    )

    @property
    def rows_held(self) -> int:
        """Batch rows held as ``unconfirmed_jump`` (in ``quarantined``)."""
        return self.quarantine_counts()["unconfirmed_jump"]

    def quarantine_counts(self) -> dict[str, int]:
        """Quarantined rows per reason (every known reason present, zero when none)."""
        counts = dict.fromkeys(QUARANTINE_REASONS, 0)
        if self.quarantined.height:
            for reason, n in self.quarantined.group_by("reason").len().iter_rows():
                counts[reason] = n
        return counts

    def finding_counts(self) -> dict[str, int]:
        if not self.findings.height:
            return {}
        return dict(self.findings.group_by("kind").len().sort("kind").iter_rows())


def validate_ohlcv(
    bars: pl.DataFrame,
    *,
    rules: ValidationRules | None = None,
    calendar: TradingCalendar | None = None,
    previous: pl.DataFrame | None = None,
    stored: StoredBars | None = None,
) -> ValidationResult:
    """Split ``bars`` into accepted and quarantined rows, and list series findings.

    Args:
        bars: canonical OHLCV rows (as produced by a source; the ``_unparseable`` flag column
            is optional).
        rules: thresholds; defaults to :class:`ValidationRules()`.
        calendar: trading calendar; defaults to NYSE.
        previous: the last stored bar per ticker before this batch (``ticker, date, close,
            adj_close``), so the first bar of a batch gets a return and a gap check; shorthand
            for ``stored=StoredBars(previous=previous)``.
        stored: what is stored around the batch (:class:`StoredBars`); ingestion passes it.
    """
    rules = rules or ValidationRules()
    calendar = calendar or trading_calendar()
    if stored is not None and previous is not None:
        raise ValueError("pass previous inside stored, not both")
    stored = stored or StoredBars(previous=previous)
    frame = (
        bars
        if "_unparseable" in bars.columns
        else bars.with_columns(pl.lit(None, dtype=pl.String()).alias("_unparseable"))
    )
    frame = frame.with_row_index("_row")
    checks = _row_checks(frame, rules, calendar)
    flags = [f"_chk_{name}" for name, _ in checks]
    frame = frame.with_columns(
        [expr.fill_null(False).alias(f) for f, (_, expr) in zip(flags, checks, strict=True)]
    )
    # The first failing rule is the reason; the full list is built only for failing rows.
    frame = frame.with_columns(
        _reason=pl.coalesce(
            [pl.when(pl.col(f)).then(pl.lit(name)) for f, (name, _) in zip(flags, checks, strict=True)]
        )
    )
    failed = frame.filter(pl.col("_reason").is_not_null()).select(
        "_row",
        _failed=pl.concat_list(
            [pl.when(pl.col(f)).then(pl.lit(name)) for f, (name, _) in zip(flags, checks, strict=True)]
        ).list.drop_nulls(),
    )
    frame = (
        frame.drop(flags)
        .join(failed, on="_row", how="left")
        .with_columns(pl.col("_failed").fill_null(pl.lit([], dtype=pl.List(pl.String()))))
    )

    clean = frame.filter(pl.col("_reason").is_null())
    restated = restated_rows(clean, stored.window, rules.restatement_tolerance)
    if rules.restatement_policy == "quarantine":
        frame = _mark(frame, restated.get_column("_row"), "restated_bar")
    frame, held = jumps.mark_jumps(frame, stored, rules.jump_log_return)

    quarantined = frame.filter(pl.col("_reason").is_not_null())
    kept = frame.filter(pl.col("_reason").is_null())
    accepted = kept.select(OHLCV_COLUMNS)
    released = held.filter(pl.col("verdict") == jumps.KEEP)
    rejected = held.filter(pl.col("verdict") == jumps.SPIKE)
    revised = revisions(restated, kept.get_column("_row"))
    series, refreshed = stored_series(
        pl.concat([accepted, released.select(OHLCV_COLUMNS)], how="vertical_relaxed"), stored
    )
    findings = pl.concat(
        [
            series_findings(series, rules=rules, calendar=calendar),
            restatement_findings(revised, rules.restatement_tolerance),
            jumps.release_findings(released),
        ],
        how="vertical_relaxed",
    ).cast(FINDING_SCHEMA)
    return ValidationResult(
        accepted=accepted,
        quarantined=_quarantine_rows(quarantined),
        findings=findings.sort("ticker", "date", "kind"),
        released=released.select(OHLCV_COLUMNS),
        rejected_held=_quarantine_rows(
            rejected.with_columns(
                _reason=pl.lit("price_spike"),
                _failed=pl.lit(["price_spike"]),
                _unparseable=pl.lit(None, pl.String()),
            )
        ),
        resolved_held=pl.concat([released, rejected]).select("ticker", "date"),
        revisions=revised,
        refreshed=refreshed,
    )


def _mark(frame: pl.DataFrame, rows: pl.Series, reason: str) -> pl.DataFrame:
    """``frame`` with ``rows`` (``_row`` ids of clean rows) failing ``reason``."""
    hit = pl.col("_row").is_in(rows.implode())
    return frame.with_columns(
        _reason=pl.when(hit).then(pl.lit(reason)).otherwise(pl.col("_reason")),
        _failed=pl.when(hit).then(pl.lit([reason])).otherwise(pl.col("_failed")),
    )


def _row_checks(
    frame: pl.DataFrame, rules: ValidationRules, calendar: TradingCalendar
) -> list[tuple[str, pl.Expr]]:
    prices = [pl.col(c) for c in PRICE_COLUMNS]
    numeric = [*prices, pl.col("volume")]
    tol = 1.0 + rules.price_tolerance
    sessions = pl.Series(calendar.sessions).cast(pl.Date)
    dup_flags = _duplicate_flags(frame)
    conflicting = pl.col("_row").is_in(dup_flags.filter("_conflict")["_row"].implode())
    repeat = pl.col("_row").is_in(dup_flags.filter("_repeat")["_row"].implode())
    return [
        ("unparseable_value", pl.col("_unparseable").is_not_null() & (unparseable_column() != "date")),
        # Never guessed: a date text that does not fit the format keeps the row, dateless.
        ("unparseable_date", unparseable_column() == "date"),
        ("missing_key", pl.col("ticker").is_null() | pl.col("date").is_null()),
        ("missing_close", pl.col("close").is_null() | ~pl.col("close").is_finite()),
        ("non_finite_value", pl.any_horizontal([c.is_not_null() & ~c.is_finite() for c in numeric])),
        ("non_trading_day", ~pl.col("date").is_in(sessions.implode())),
        ("conflicting_duplicate", conflicting),
        ("duplicate_key", repeat),
        ("non_positive_price", pl.any_horizontal([c <= 0 for c in prices])),
        ("price_below_minimum", pl.any_horizontal([c < rules.min_price for c in prices])),
        ("high_below_open_close", pl.col("high") * tol < pl.max_horizontal("open", "close")),
        ("low_above_open_close", pl.col("low") > pl.min_horizontal("open", "close") * tol),
        ("negative_volume", pl.col("volume") < 0),
    ]


def _duplicate_flags(frame: pl.DataFrame) -> pl.DataFrame:
    """Rows whose (ticker, date) repeats: ``_conflict`` if the copies' prices differ, else
    ``_repeat`` for every copy after the first. Computed on the repeated keys only (cheap)."""
    key = ["ticker", "date"]
    dups = frame.select("_row", *key, *PRICE_COLUMNS).filter(pl.len().over(key) > 1)
    signature = pl.concat_str([pl.col(c).cast(pl.String).fill_null("") for c in PRICE_COLUMNS], separator="|")
    return dups.select(
        "_row",
        _conflict=signature.n_unique().over(key) > 1,
        _repeat=pl.col("_row") != pl.col("_row").min().over(key),
    )


def _quarantine_rows(rows: pl.DataFrame) -> pl.DataFrame:
    """Quarantine records: raw values, the reason, every failed rule, and a stable id."""
    out = rows.with_columns(
        reason=pl.col("_reason"),
        detail=pl.concat_str(
            [
                pl.col("_failed").list.join(", "),
                pl.when(pl.col("_unparseable").is_not_null()).then(
                    pl.lit(" (column ") + pl.col("_unparseable") + pl.lit(")")
                ),
            ],
            ignore_nulls=True,
        ),
    )
    ident = pl.concat_str(
        [pl.col(c).cast(pl.String).fill_null("∅") for c in ("source", "reason", *OHLCV_COLUMNS[:-1])],
        separator="|",
    )
    # Exact repeats of one record get an occurrence number, so the id does not depend on the
    # batch's row order and a re-run of any window writes the same ids.
    keyed = out.select(ident.alias("_id")).with_columns(_n=pl.int_range(pl.len()).over("_id"))
    ids = [hashlib.sha256(f"{i}|{n}".encode()).hexdigest()[:32] for i, n in keyed.iter_rows()]
    return out.with_columns(quarantine_id=pl.Series(ids, dtype=pl.String())).select(QUARANTINE_COLUMNS)
