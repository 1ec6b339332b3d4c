"""Restatements: a re-delivered bar whose values differ from the stored bar of the same key.

A vendor that corrects (or corrupts) history re-delivers bars already stored. A difference is
never silent: each one becomes a revision (``market.ohlcv_revisions``: old and new values of
every field, the old and new source, what was done) and a ``restated`` finding. The policy
(:class:`~model_code.validation.ohlcv_rules.ValidationRules` ``restatement_policy``) decides
what is done: ``replace`` (default) stores the new values, ``quarantine`` keeps the stored bar
and quarantines the new one as ``restated_bar``. A restated bar that fails a rule of its own is
quarantined for that rule and the stored bar stays, whatever the policy.
"""

from __future__ import annotations

import polars as pl

FIELDS: tuple[str, ...] = ("open", "high", "low", "close", "adj_close", "volume")
POLICIES: tuple[str, ...] = ("replace", "quarantine")
REPLACED, QUARANTINED = "replaced", "quarantined"

REVISION_SCHEMA: dict[str, pl.DataType] = {
    "ticker": pl.String(),
    "date": pl.Date(),
    **{f"{side}_{f}": pl.Float64() for f in FIELDS for side in ("old", "new")},
    "old_source": pl.String(),
    "source": pl.String(),
    "action": pl.String(),
}


def _differs(old: pl.Expr, new: pl.Expr, tolerance: float) -> pl.Expr:
    """NULL against a value, or two values further apart than ``tolerance`` relative to the larger."""
    scale = pl.max_horizontal(old.abs(), new.abs())
    return (old.is_null() != new.is_null()) | ((old - new).abs() > tolerance * scale).fill_null(False)


def restated_rows(candidates: pl.DataFrame, stored: pl.DataFrame | None, tolerance: float) -> pl.DataFrame:
    """Candidates whose (ticker, date) is stored with a different value in some field.

    Args:
        candidates: batch rows that passed the row rules: ``_row``, ``ticker``, ``date``, the
            :data:`FIELDS` and ``source``.
        stored: the stored bars of the window (same columns but ``_row``), or ``None``.
        tolerance: relative difference below which two values are the same (float noise).

    Returns:
        ``_row``, ``ticker``, ``date``, ``old_<field>`` / ``new_<field>`` for every field,
        ``old_source``, ``source``, ``changed`` (names of the fields that differ, comma
        separated) and ``max_rel_change`` (largest |new − old| / |old| over the changed
        fields that have both values; NULL when a value appeared or vanished).
    """
    empty = pl.DataFrame(schema={"_row": pl.UInt32(), **REVISION_SCHEMA})
    if stored is None or not stored.height or not candidates.height:
        return empty.drop("action").with_columns(changed=pl.lit(None, pl.String()), max_rel_change=None)
    old = stored.select("ticker", "date", *[pl.col(f).alias(f"old_{f}") for f in FIELDS], old_source="source")
    pairs = candidates.select(
        "_row", "ticker", "date", *[pl.col(f).alias(f"new_{f}") for f in FIELDS], "source"
    )
    pairs = pairs.join(old, on=["ticker", "date"], how="inner")
    flags = {f: _differs(pl.col(f"old_{f}"), pl.col(f"new_{f}"), tolerance) for f in FIELDS}
    rel = [
        pl.when(flags[f]).then((pl.col(f"new_{f}") - pl.col(f"old_{f}")).abs() / pl.col(f"old_{f}").abs())
        for f in FIELDS
    ]
    changed = pairs.filter(pl.any_horizontal(list(flags.values()))).with_columns(
        changed=pl.concat_str(
            [pl.when(e).then(pl.lit(f)) for f, e in flags.items()], separator=",", ignore_nulls=True
        ),
        max_rel_change=pl.max_horizontal(rel),
    )
    return changed.select(list(empty.drop("action").columns) + ["changed", "max_rel_change"])


def revisions(restated: pl.DataFrame, kept_rows: pl.Series) -> pl.DataFrame:
    """One revision per restated row: ``replaced`` when its row is in ``kept_rows`` (stored),
    else ``quarantined`` (the stored bar stays). Columns of ``market.ohlcv_revisions`` but
    ``ingested_at``."""
    action = (
        pl.when(pl.col("_row").is_in(kept_rows.implode()))
        .then(pl.lit(REPLACED))
        .otherwise(pl.lit(QUARANTINED))
    )
    return restated.with_columns(action=action).select(list(REVISION_SCHEMA)).cast(REVISION_SCHEMA)


def restatement_findings(revised: pl.DataFrame, tolerance: float) -> pl.DataFrame:
    """A ``restated`` (warn) finding per revision; detail: each changed field old → new, and the action."""
    parts = [
        pl.when(_differs(pl.col(f"old_{f}"), pl.col(f"new_{f}"), tolerance)).then(
            pl.format("{} {} → {}", pl.lit(f), _shown(f"old_{f}"), _shown(f"new_{f}"))
        )
        for f in FIELDS
    ]
    return revised.select(
        "ticker",
        "date",
        kind=pl.lit("restated"),
        severity=pl.lit("warn"),
        detail=pl.format(
            "{} ({})", pl.concat_str(parts, separator="; ", ignore_nulls=True), pl.col("action")
        ),
    )


def _shown(column: str) -> pl.Expr:
    return pl.col(column).round(6).cast(pl.String).fill_null("NULL")
