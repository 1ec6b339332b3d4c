"""Purged walk-forward cross-validation over a panel's sessions, and a log of every trial.

Why not skfolio: ``skfolio.model_selection.WalkForward`` and ``CombinatorialPurgedCV`` split
the positions of one time-indexed array (one row per date) and purge a fixed count of
observations (``purged_size``); they know neither a panel (many tickers per date) nor each
row's own label end. Here label windows are per row: a ticker with gaps realizes its h-bar
label more than h sessions later, which a fixed count would not purge. The fold layout is the
same as ``WalkForward(test_size, train_size, expand_train=..., purged_size=purge+embargo)``
on the panel's sorted unique dates (test blocks anchored at the last session); rows are then
purged by ``label_end`` (see :func:`purged_train_mask`). No Dagster imports here.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
import polars as pl

from model_code.ml.dataset import LABEL, LABEL_END, Panel


def purged_train_mask(
    date_pos: np.ndarray, end_pos: np.ndarray, test_lo: int, test_hi: int, embargo: int
) -> np.ndarray:
    """True where a training row may stay beside the test block of sessions ``[test_lo, test_hi]``.

    A row's label window is sessions ``[date_pos, end_pos]``. Kept rows end more than
    ``embargo`` sessions before ``test_lo`` or start more than ``embargo`` sessions after
    ``test_hi`` (purge + embargo on both sides, as in de Prado's purged k-fold).
    """
    return (end_pos < test_lo - embargo) | (date_pos > test_hi + embargo)


@dataclass(frozen=True, eq=False)
class Fold:
    """One split: row positions into ``panel.frame`` and session bounds of its blocks.

    ``train_start``/``train_end`` bound the training span before the row-level purge.
    """

    fold: int
    train_idx: np.ndarray
    test_idx: np.ndarray
    train_start: dt.date
    train_end: dt.date
    test_start: dt.date
    test_end: dt.date


class PurgedWalkForward:
    """Chronological train/test splits on session dates with label-end purge and an embargo.

    Args:
        n_splits: number of test blocks; if ``test_size`` is None it is derived from it.
        train_size: sessions in the (first, or each when rolling) training window.
        test_size: sessions per test block.
        expanding: True trains on all earlier sessions; False on the last ``train_size``.
        purge: sessions dropped before the test block for label overlap; default the panel's
            horizon. Rows are also purged by ``label_end``, which covers gaps.
        embargo: extra sessions (>= 1) that must separate any training label window from the
            test block, before it and (for rows after it) after it.
    """

    def __init__(
        self,
        n_splits: int | None = None,
        *,
        train_size: int | None = None,
        test_size: int | None = None,
        expanding: bool = True,
        purge: int | None = None,
        embargo: int = 1,
    ) -> None:
        if n_splits is None and (train_size is None or test_size is None):
            raise ValueError("give n_splits, or both train_size and test_size")
        for name, v in (("n_splits", n_splits), ("train_size", train_size), ("test_size", test_size)):
            if v is not None and v < 1:
                raise ValueError(f"{name} must be >= 1, got {v}")
        if purge is not None and purge < 0:
            raise ValueError(f"purge must be >= 0, got {purge}")
        if embargo < 1:
            raise ValueError(f"embargo must be >= 1 session, got {embargo}")
        if not expanding and train_size is None:
            raise ValueError("a rolling window (expanding=False) needs train_size")
        self.n_splits, self.train_size, self.test_size = n_splits, train_size, test_size
        self.expanding, self.purge, self.embargo = expanding, purge, embargo

    def _purge(self, panel: Panel) -> int:
        return panel.horizon if self.purge is None else self.purge

    def blocks(self, n_dates: int, purge: int) -> list[tuple[int, int, int, int]]:
        """Session positions ``(train_lo, train_hi, test_lo, test_hi)``, all inclusive."""
        gap = purge + self.embargo
        if self.n_splits is not None:
            k = self.n_splits
            size = self.test_size or (n_dates - (self.train_size or n_dates // (k + 1)) - gap) // k
        else:
            size = self.test_size or 0
            k = (n_dates - (self.train_size or 0) - gap) // size
        first = n_dates - k * size
        if k < 1 or size < 1 or first - gap < (self.train_size or 1):
            raise ValueError(
                f"{n_dates} sessions cannot hold {self.n_splits or 'any'} test block(s) of "
                f"{self.test_size or 'derived'} sessions after a gap of {gap} and "
                f"{self.train_size or 1} training session(s)"
            )
        out = []
        for i in range(k):
            test_lo = first + i * size
            train_hi = test_lo - gap - 1
            train_lo = 0 if self.expanding else train_hi - (self.train_size or 0) + 1
            out.append((max(train_lo, 0), train_hi, test_lo, test_lo + size - 1))
        return out

    def get_n_splits(self, panel: Panel) -> int:
        """Number of folds :meth:`folds` yields (those left with training rows)."""
        return sum(1 for _ in self.folds(panel))

    def folds(self, panel: Panel) -> Iterator[Fold]:
        """Folds in chronological order; training rows need a label (non-NULL) and ``label_end``.

        A fold whose training rows are all purged (tiny rolling windows, long gaps) is skipped;
        ``Fold.fold`` keeps its position in the layout.
        """
        sessions = panel.dates()
        frame = panel.frame
        date_pos = np.searchsorted(sessions, frame["date"].to_numpy().astype("datetime64[D]"))
        ends = frame[LABEL_END].to_numpy().astype("datetime64[D]")
        # NULL label_end (unrealized) never trains; one past the last session sorts after all.
        end_pos = np.where(np.isnat(ends), len(sessions) + 1, np.searchsorted(sessions, ends, side="left"))
        labelled = frame[LABEL].is_not_null().to_numpy()
        if frame[LABEL].dtype.is_float():
            labelled &= ~frame[LABEL].is_nan().fill_null(False).to_numpy()
        to_date = [d.astype(dt.date) for d in sessions]
        for i, (tr_lo, tr_hi, te_lo, te_hi) in enumerate(self.blocks(len(sessions), self._purge(panel))):
            in_train = (date_pos >= tr_lo) & (date_pos <= tr_hi) & labelled
            keep = in_train & purged_train_mask(date_pos, end_pos, te_lo, te_hi, self.embargo)
            test = (date_pos >= te_lo) & (date_pos <= te_hi)
            if not keep.any():
                continue
            yield Fold(
                i,
                np.flatnonzero(keep),
                np.flatnonzero(test),
                to_date[tr_lo],
                to_date[tr_hi],
                to_date[te_lo],
                to_date[te_hi],
            )

    def split(self, panel: Panel) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """``(train_idx, test_idx)`` row positions into ``panel.frame``, like scikit-learn."""
        for f in self.folds(panel):
            yield f.train_idx, f.test_idx


@dataclass(frozen=True)
class Trial:
    """One evaluated configuration on one fold/window; ``params`` is canonical JSON."""

    trial: int
    model: str
    params: str
    fold: int | None
    window_start: dt.date | None
    window_end: dt.date | None
    scores: Mapping[str, float]
    recorded_at: dt.datetime


@dataclass
class TrialLog:
    """Append-only record of every trial, for a deflated Sharpe ratio's trial count later.

    Records cannot be edited or removed. ``n_trials`` counts distinct (model, params)
    configurations, the N of the deflated Sharpe ratio; ``len(log)`` counts records.
    """

    _trials: list[Trial] = field(default_factory=list)

    def record(
        self,
        model: str,
        params: Mapping[str, Any],
        scores: Mapping[str, float] | float,
        *,
        fold: int | None = None,
        window: tuple[dt.date, dt.date] | None = None,
    ) -> Trial:
        """Append one trial; a bare float score is stored as ``{"score": value}``."""
        if isinstance(scores, Mapping):
            score_map = {str(k): float(v) for k, v in scores.items()}
        else:
            score_map = {"score": float(scores)}
        trial = Trial(
            trial=len(self._trials),
            model=model,
            params=json.dumps(dict(params), sort_keys=True, default=str),
            fold=fold,
            window_start=window[0] if window else None,
            window_end=window[1] if window else None,
            scores=MappingProxyType(score_map),
            recorded_at=dt.datetime.now(dt.UTC),
        )
        self._trials.append(trial)
        return trial

    @property
    def trials(self) -> tuple[Trial, ...]:
        return tuple(self._trials)

    @property
    def n_trials(self) -> int:
        return len({(t.model, t.params) for t in self._trials})

    def __len__(self) -> int:
        return len(self._trials)

    def to_frame(self) -> pl.DataFrame:
        """One row per record; scores as ``score_{name}`` Float64 columns (NULL where absent)."""
        names = sorted({k for t in self._trials for k in t.scores})
        schema: dict[str, Any] = {
            "trial": pl.Int64,
            "model": pl.String,
            "params": pl.String,
            "fold": pl.Int64,
            "window_start": pl.Date,
            "window_end": pl.Date,
            "recorded_at": pl.Datetime("us", "UTC"),
            **{f"score_{n}": pl.Float64 for n in names},
        }
        rows = [
            {
                "trial": t.trial,
                "model": t.model,
                "params": t.params,
                "fold": t.fold,
                "window_start": t.window_start,
                "window_end": t.window_end,
                "recorded_at": t.recorded_at,
                **{f"score_{n}": t.scores.get(n) for n in names},
            }
            for t in self._trials
        ]
        return pl.DataFrame(rows, schema=schema)
