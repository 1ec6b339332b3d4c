"""Row rules for daily bars: each failing row is quarantined with one reason, never dropped.

Rules run in the order of :data:`QUARANTINE_REASONS`; a row gets the first reason it fails
(the ``detail`` column lists every rule it failed). Rows that pass every rule are accepted.
Series-level problems that do not make a bar wrong on its own (calendar gaps, jumps that do
not revert, detected splits, zero volume) are *findings*: reported, stored, not rejected.

Returns are log returns of the adjusted close (the raw close where no adjusted close exists).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import polars as pl

from model_code.market_data.calendar import TradingCalendar, trading_calendar
from model_code.market_data.schema import OHLCV_COLUMNS, PRICE_COLUMNS, unparseable_column
from model_code.validation.findings import FINDING_SCHEMA, series_findings

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
    "price_spike": "a one-bar jump beyond the threshold that reverts on the next bar",
}


@dataclass(frozen=True)
class ValidationRules:
    """Thresholds of the rules, with their units.

    Attributes:
        min_price: lowest credible price, USD. Quotes of a few tenths of a cent in large-cap
            data are vendor placeholders, not trades.
        jump_log_return: |log return| beyond which a move is a jump (0.5 ≈ -39 % / +65 %).
        price_tolerance: relative slack for high/low comparisons (float rounding at source).
    """

    min_price: float = 0.05
    jump_log_return: float = 0.5
    price_tolerance: float = 1e-6


@dataclass
class ValidationResult:
    """A batch split three ways. Every input row is in exactly one of the first two frames."""

    accepted: pl.DataFrame
    quarantined: pl.DataFrame
    findings: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=FINDING_SCHEMA))

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
) -> ValidationResult:
    """Split ``bars`` into accepted and quarantined rows, and list series findings.

    Args:
        bars: canonical OHLCV rows (as produced by a source; the ``_unparseable`` flag column
            is optional).
        rules: thresholds; defaults to :class:`ValidationRules()`.
        calendar: trading calendar; defaults to NYSE.
        previous: the last stored bar per ticker before this batch (``ticker, date, close,
            adj_close``), so the first bar of a batch gets a return and a gap check.
    """
    rules = rules or ValidationRules()
    calendar = calendar or trading_calendar()
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
    frame = frame.drop(flags).join(failed, on="_row", how="left")
    frame = _flag_spikes(frame, rules, previous)

    quarantined = frame.filter(pl.col("_reason").is_not_null())
    accepted = frame.filter(pl.col("_reason").is_null()).select(OHLCV_COLUMNS)
    findings = series_findings(accepted, rules=rules, calendar=calendar, previous=previous)
    return ValidationResult(accepted=accepted, quarantined=_quarantine_rows(quarantined), findings=findings)


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


def _flag_spikes(frame: pl.DataFrame, rules: ValidationRules, previous: pl.DataFrame | None) -> pl.DataFrame:
    """Quarantine one-bar spikes: a jump beyond the threshold reverted by the next bar."""
    clean = frame.filter(pl.col("_reason").is_null()).select("_row", "ticker", "date", "close", "adj_close")
    if previous is not None and previous.height:
        context = previous.select(
            pl.lit(None, dtype=clean.schema["_row"]).alias("_row"), "ticker", "date", "close", "adj_close"
        )
        clean = pl.concat([context, clean], how="vertical_relaxed")
    price = pl.coalesce("adj_close", "close")
    limit = rules.jump_log_return
    ret = (
        clean.sort("ticker", "date")
        .with_columns(_r=(price / price.shift(1)).log().over("ticker"))
        .with_columns(_r_next=pl.col("_r").shift(-1).over("ticker"))
    )
    spikes = ret.filter(
        (pl.col("_r").abs() > limit)
        & (pl.col("_r_next").abs() > limit)
        & (pl.col("_r").sign() != pl.col("_r_next").sign())
        & pl.col("_row").is_not_null()
    ).select("_row", _spike=pl.lit(True))
    return (
        frame.join(spikes, on="_row", how="left")
        .with_columns(
            _reason=pl.when(pl.col("_spike")).then(pl.lit("price_spike")).otherwise(pl.col("_reason")),
            _failed=pl.when(pl.col("_spike"))
            .then(pl.col("_failed").list.concat(pl.lit(["price_spike"])))
            .otherwise(pl.col("_failed")),
        )
        .drop("_spike")
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
    return out.with_columns(quarantine_id=pl.Series(ids, dtype=pl.String())).select(
        "quarantine_id", "ticker", "date", "source", "reason", "detail", *PRICE_COLUMNS, "volume"
    )
