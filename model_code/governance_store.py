"""``models.decisions``: every governance decision, its reason and evidence, written and read back.

:func:`log_decisions` upserts :class:`~model_code.governance.Decision` rows on the natural key
``(decided_at, family, horizon, subject, rival)``, so rerunning the same decision rewrites its
row. The readers answer the questions the assets ask: the latest decisions of a family (asset
metadata), the champion a model was promoted over (the revert check), why a family has no
champion (``ml/predictions`` and the router), and the router's current primary. No Dagster
imports here.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from model_code.governance import Decision
from model_code.warehouse import Warehouse

TABLE = "models.decisions"
KEY = ("decided_at", "family", "horizon", "subject", "rival")
ROUTER = "router"
SCHEMA: dict[str, pl.DataType] = {
    "decided_at": pl.Datetime("us"),
    "family": pl.String(),
    "horizon": pl.Int32(),
    "subject": pl.String(),
    "rival": pl.String(),
    "action": pl.String(),
    "reason": pl.String(),
    "evidence": pl.String(),
    "data_end": pl.Date(),
}


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dt.date):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalar
        return _jsonable(value.item())
    return value


@dataclass(frozen=True)
class LoggedDecision:
    """A decision as logged: what :class:`Decision` says plus where, when and on which data."""

    decision: Decision
    family: str
    horizon: int
    decided_at: dt.datetime
    data_end: dt.date | None = None
    context: Mapping[str, Any] | None = None

    def row(self) -> dict[str, Any]:
        d = self.decision
        evidence = {**d.evidence, **(self.context or {})}
        return {
            "decided_at": self.decided_at,
            "family": self.family,
            "horizon": int(self.horizon),
            "subject": d.subject,
            "rival": d.rival,
            "action": d.action,
            "reason": d.reason or d.action,
            "evidence": json.dumps(_jsonable(evidence), sort_keys=True),
            "data_end": self.data_end,
        }


def log_decisions(warehouse: Warehouse, decisions: Sequence[LoggedDecision]) -> int:
    """Upsert ``decisions`` into ``models.decisions``; returns the rows written."""
    if not decisions:
        return 0
    frame = pl.DataFrame([d.row() for d in decisions], schema=SCHEMA)
    return warehouse.upsert(TABLE, frame, list(KEY))


def latest_decisions(
    warehouse: Warehouse,
    family: str | None = None,
    horizon: int | None = None,
    *,
    limit: int = 20,
    until: dt.datetime | None = None,
) -> pl.DataFrame:
    """The newest ``limit`` rows (optionally of one family / horizon, decided at or before
    ``until``), newest first."""
    return warehouse.query(
        f"SELECT * FROM {TABLE} WHERE (? IS NULL OR family = ?) AND (? IS NULL OR horizon = ?) "
        "AND (? IS NULL OR decided_at <= ?) ORDER BY decided_at DESC, subject, rival LIMIT ?",
        [family, family, horizon, horizon, until, until, int(limit)],
    )


def promoted_over(warehouse: Warehouse, family: str, horizon: int, model_id: str) -> str | None:
    """The rival ``model_id`` was last promoted over (the previous champion), or None."""
    rows = warehouse.execute(
        f"SELECT rival FROM {TABLE} WHERE family = ? AND horizon = ? AND subject = ? AND action = 'promote' "
        "ORDER BY decided_at DESC LIMIT 1",
        [family, int(horizon), model_id],
    )
    return rows[0][0] if rows else None


def no_champion_reason(warehouse: Warehouse, family: str, horizon: int) -> str:
    """Why ``family``/``horizon`` has no champion, from its latest decision: e.g. ``no champion
    (governance abstain: lgbm...: loss not significantly lower (DM 0.52, one-sided p 0.310 >= 0.05))``."""
    rows = latest_decisions(warehouse, family, horizon, limit=1)
    if rows.height == 0:
        return "no champion (no governance decision yet: train ml/model)"
    row = rows.row(0, named=True)
    return f"no champion (governance {row['action']} at {row['decided_at']:%Y-%m-%d}: {row['reason']})"


def primary_of(action: str, subject: str, rival: str) -> str:
    """The router primary a router decision leaves: the subject when it was promoted, kept or
    reverted to, the rival (the incumbent) when it was refused, ``ts`` when nothing cleared."""
    if action in ("promote", "keep", "revert"):
        return subject
    if action == "refuse":
        return rival
    return "ts"


def router_primary(warehouse: Warehouse, horizon: int, until: dt.datetime) -> tuple[str, str] | None:
    """``(primary, reason)`` of the latest router decision for ``horizon`` at or before
    ``until``; None when there is none."""
    rows = latest_decisions(warehouse, ROUTER, horizon, limit=1, until=until)
    if rows.height == 0:
        return None
    row = rows.row(0, named=True)
    return primary_of(row["action"], row["subject"], row["rival"]), row["reason"]


def decisions_markdown(frame: pl.DataFrame, *, width: int = 160) -> str:
    """The decisions as a markdown table (reasons cut to ``width`` characters)."""
    if frame.height == 0:
        return "no governance decision yet"
    lines = [
        "| decided_at | family | h | action | subject | rival | reason |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in frame.iter_rows(named=True):
        reason = str(r["reason"]).replace("|", "/")
        reason = reason if len(reason) <= width else reason[: width - 1] + "…"
        lines.append(
            f"| {r['decided_at']:%Y-%m-%d %H:%M} | {r['family']} | {r['horizon']} | {r['action']} "
            f"| {r['subject']} | {r['rival']} | {reason} |"
        )
    return "\n".join(lines)
