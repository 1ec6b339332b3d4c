"""Scoring the champion ML models at each as_of close, and refusing those that must not score.

:func:`score_champions` turns the champions of ``models.registry`` (one per family and horizon)
and the ``features.daily`` rows of some sessions into ``forecasts.ml_predictions`` rows (the
``forecasts.predictions`` layout, :func:`~model_code.ml.forecasts.prediction_rows`). For each
as_of it applies each champion to the feature rows dated exactly as_of, unless the champion is
refused for that as_of, for one of :data:`SKIP_REASONS`:

* ``no_champion``: the registry has no champion for the family and horizon (governance
  refused every candidate: the family abstains, and ``why`` says so);
* ``expired``: the champion is past its ``expires_at`` at as_of (retrain rather than trade on a
  stale model);
* ``not_a_forecaster``: the champion's artifact is not a
  :class:`~model_code.ml.forecasts.ReturnForecaster` (e.g. a bare learner registered by hand),
  so it has no calibration to return units;
* ``not_point_in_time``: the champion learned from bars after as_of (``data_end > as_of``), so
  its forecasts would look ahead.

It reads no warehouse: the caller reads the records and features, closes the warehouse, scores,
and writes the rows. No Dagster imports here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import polars as pl

from model_code.forecasting.predictions import PREDICTION_SCHEMA, target_dates
from model_code.ml.forecasts import ReturnForecaster, prediction_rows
from model_code.ml.lifecycle import MODEL_NAMES
from model_code.ml.registry import ModelExpired, RegistryRecord

SKIP_REASONS = ("expired", "not_point_in_time", "no_champion", "not_a_forecaster")
# forecasts.ml_predictions' key.
KEYS = ["as_of", "ticker", "model", "horizon"]


def champion_label(family: str, horizon: int) -> str:
    """How a (family, horizon) is named in logs and metadata, e.g. ``lgbm h=5``."""
    return f"{MODEL_NAMES.get(family, family)} h={horizon}"


@dataclass(frozen=True, eq=False)
class ScoringResult:
    """What :func:`score_champions` produced and refused.

    ``rows``: ``forecasts.ml_predictions`` rows (:data:`PREDICTION_SCHEMA`), unique on
    :data:`KEYS`. ``rows_per_session``: rows per as_of, 0 included. ``scored``: labels
    (:func:`champion_label`) that produced rows for at least one as_of; ``model_ids`` the
    models that did. ``skipped``: per reason of :data:`SKIP_REASONS`, label -> message (the
    first as_of's, when a label is refused on several). A label can be both scored and skipped
    when a range of sessions straddles its expiry or its ``data_end``.
    """

    rows: pl.DataFrame
    rows_per_session: dict[dt.date, int]
    scored: frozenset[str]
    model_ids: frozenset[str]
    skipped: dict[str, dict[str, str]]

    def labels(self, reason: str) -> list[str]:
        """The sorted labels refused for ``reason`` (one of :data:`SKIP_REASONS`)."""
        return sorted(self.skipped[reason])

    @property
    def tickers(self) -> int:
        """The most tickers scored in one as_of (0 without rows)."""
        if self.rows.height == 0:
            return 0
        return int(self.rows.group_by("as_of").agg(pl.col("ticker").n_unique())["ticker"].max())


def score_champions(
    champions: Mapping[tuple[str, int], RegistryRecord | None],
    load: Callable[[RegistryRecord], Any],
    features: pl.DataFrame,
    sessions: Iterable[dt.date],
    why: Mapping[tuple[str, int], str] | None = None,
) -> ScoringResult:
    """Forecasts of every usable champion at every as_of in ``sessions`` (see module docs).

    Args:
        champions: (registry family, horizon in sessions) -> its champion record, or None when
            there is none.
        load: record -> its model (e.g. :func:`~model_code.ml.registry.load_artifact`); called
            at most once per model_id, and only for a champion not expired at some as_of.
        features: ``features.daily`` rows; each as_of uses only the rows dated as_of.
        sessions: the as_of sessions (NYSE closes) to score.
        why: (family, horizon) -> why it has no champion (e.g.
            :func:`~model_code.governance_store.no_champion_reason`), used as the message.

    ``target_date`` is the h-th NYSE session after as_of; ``yhat`` and the interval bounds are
    cumulative log returns from the as_of close over h sessions.
    """
    skipped: dict[str, dict[str, str]] = {r: {} for r in SKIP_REASONS}
    for (family, h), rec in champions.items():
        if rec is None:
            skipped["no_champion"][champion_label(family, h)] = (why or {}).get(
                (family, h), f"models.registry has no champion {family} model for horizon {h}"
            )
    present = [rec for rec in champions.values() if rec is not None]
    horizons = sorted({rec.horizon for rec in present})
    by_day = {key[0]: frame for key, frame in features.partition_by("date", as_dict=True).items()}
    loaded: dict[str, Any] = {}
    frames: list[pl.DataFrame] = []
    per_session: dict[dt.date, int] = {}
    scored: set[str] = set()
    used: set[str] = set()
    for as_of in sessions:
        day = by_day.get(as_of)
        ahead = target_dates(as_of, horizons) if horizons and day is not None else {}
        per_session[as_of] = 0
        for rec in present:
            label = champion_label(rec.family, rec.horizon)
            try:
                rec.check_usable(as_of)
            except ModelExpired as exc:
                skipped["expired"].setdefault(label, str(exc))
                continue
            if rec.model_id not in loaded:
                loaded[rec.model_id] = load(rec)
            model = loaded[rec.model_id]
            if not isinstance(model, ReturnForecaster):
                skipped["not_a_forecaster"].setdefault(
                    label,
                    f"champion {rec.model_id} is a {type(model).__name__}, not a ReturnForecaster: "
                    "it has no calibration to return units",
                )
                continue
            if not model.usable_at(as_of):
                skipped["not_point_in_time"].setdefault(
                    label,
                    f"champion {rec.model_id} learned from bars up to {model.data_end}, after as_of "
                    f"{as_of}; no forecasts (they would look ahead)",
                )
                continue
            if day is None:
                continue
            rows = prediction_rows(
                model.forecast(day),
                as_of=as_of,
                model=MODEL_NAMES.get(rec.family, rec.family),
                horizon=rec.horizon,
                target_date=ahead[rec.horizon],
            )
            frames.append(rows)
            per_session[as_of] += rows.height
            used.add(rec.model_id)
            scored.add(label)
    rows = pl.concat(frames) if frames else pl.DataFrame(schema=PREDICTION_SCHEMA)
    return ScoringResult(rows, per_session, frozenset(scored), frozenset(used), skipped)
