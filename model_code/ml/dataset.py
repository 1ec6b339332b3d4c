"""Model-ready panels: features joined to one horizon's label, and a leak-free normalizer.

A :class:`Panel` is one row per (ticker, date) with the point-in-time features known at the
close of ``date``, the label for horizon h (e.g. ``fwd_ret_h``, a log return over the ticker's
next h bars) and ``label_end``, the session on which that label is realized. ``label_end`` is
what purged cross-validation (:mod:`model_code.ml.cv`) needs to keep training labels out of a
test window. No Dagster imports here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal, Self

import numpy as np
import polars as pl

KEYS: tuple[str, str] = ("ticker", "date")
LABEL = "label"
LABEL_END = "label_end"
MAD_TO_SIGMA = 1.4826  # MAD * 1.4826 estimates sigma for Gaussian data


@dataclass(frozen=True, eq=False)
class Panel:
    """Rows sorted by (date, ticker): keys, ``feature_columns``, ``label`` and ``label_end``.

    ``label_source`` names the targets column the label came from (e.g. ``fwd_ret_5``).
    """

    frame: pl.DataFrame
    feature_columns: tuple[str, ...]
    horizon: int
    label_source: str = LABEL

    def dates(self) -> np.ndarray:
        """Sorted unique session dates (``datetime64[D]``)."""
        return self.frame["date"].unique().sort().to_numpy().astype("datetime64[D]")

    def between(self, start: dt.date, end: dt.date) -> Panel:
        """Rows dated in ``[start, end]`` (inclusive)."""
        return replace(self, frame=self.frame.filter(pl.col("date").is_between(start, end)))

    def take(self, idx: np.ndarray | Sequence[int]) -> Panel:
        """Rows at positions ``idx`` of ``frame`` (e.g. a fold's train or test indices)."""
        return replace(self, frame=self.frame[np.asarray(idx, dtype=np.int64)])

    def feature_matrix(self) -> np.ndarray:
        """Features as a float64 (rows x features) array; NULL becomes NaN."""
        cols = [pl.col(c).cast(pl.Float64) for c in self.feature_columns]
        return self.frame.select(cols).to_numpy()

    def labels(self) -> np.ndarray:
        """The label as a float64 array; NULL becomes NaN."""
        return self.frame[LABEL].cast(pl.Float64).to_numpy()


def build_panel(
    features: pl.DataFrame,
    targets: pl.DataFrame,
    horizon: int,
    *,
    label: str = "fwd_ret",
    require_label: bool = True,
    feature_columns: Sequence[str] | None = None,
) -> Panel:
    """Join features and targets on (ticker, date) for one horizon.

    Args:
        features: output of ``build_daily_features`` (or any frame keyed ticker, date).
        targets: output of ``build_targets`` containing ``target_date_{h}`` and ``{label}_{h}``.
        horizon: h, in the ticker's own bars.
        label: target family: ``fwd_ret``, ``fwd_ret_z`` (-> ``fwd_ret_{h}_z``) or ``sig_move``.
        require_label: drop rows whose label is not realized yet (NULL label or label_end);
            keep ``False`` for prediction on the latest dates.
        feature_columns: defaults to every non-key column of ``features``.

    Raises:
        ValueError: missing columns, or a (ticker, date) key repeated in either input.
    """
    source = f"fwd_ret_{horizon}_z" if label == "fwd_ret_z" else f"{label}_{horizon}"
    end_col = f"target_date_{horizon}"
    missing = [c for c in (source, end_col, *KEYS) if c not in targets.columns]
    if missing:
        raise ValueError(f"targets lack column(s) {missing}; found {targets.columns}")
    cols = (
        tuple(feature_columns)
        if feature_columns is not None
        else tuple(c for c in features.columns if c not in KEYS)
    )
    absent = [c for c in (*KEYS, *cols) if c not in features.columns]
    if absent:
        raise ValueError(f"features lack column(s) {absent}")
    for name, df in (("features", features), ("targets", targets)):
        if df.select(pl.struct(KEYS).is_duplicated().any()).item():
            raise ValueError(f"{name} contain a (ticker, date) key more than once")
    lab = targets.select(
        *KEYS, pl.col(source).alias(LABEL), pl.col(end_col).cast(pl.Date).alias(LABEL_END)
    ).with_columns(pl.col("date").cast(pl.Date))
    frame = features.select(pl.col("ticker"), pl.col("date").cast(pl.Date), *cols).join(
        lab, on=list(KEYS), how="inner"
    )
    if lab.schema[LABEL].is_float():
        frame = frame.with_columns(pl.col(LABEL).fill_nan(None))
    if require_label:
        frame = frame.filter(pl.col(LABEL).is_not_null() & pl.col(LABEL_END).is_not_null())
    return Panel(frame.sort("date", "ticker"), cols, horizon, source)


def sample_weights(panel: Panel, scheme: Literal["uniform", "per_date"] = "per_date") -> np.ndarray:
    """Row weights with mean 1: ``per_date`` gives every date the same total weight.

    Without it, dates with more tickers dominate a pooled fit.
    """
    if scheme == "uniform":
        return np.ones(panel.frame.height)
    if scheme != "per_date":
        raise ValueError(f"unknown weight scheme {scheme!r}")
    n_date = panel.frame.select(pl.len().over("date")).to_series().to_numpy().astype(float)
    w = 1.0 / n_date
    return w * (len(w) / w.sum()) if len(w) else w


class CrossSectionalNormalizer:
    """Per-date robust z-score (median/MAD, clipped at +-clip) and NULL fill with training medians.

    The per-date median/MAD come from that date's own cross-section (known at its close), so
    they are point in time on any rows. The only statistics carried across dates are the NULL
    fill values: per-feature medians (of the z-scores for normalized columns, of the raw values
    for pass-through ones) learned in ``fit`` from a training window ``[start, end]`` only
    (Qlib's ``fit_start_time``/``fit_end_time``). ``fit`` refuses rows outside that window.

    Transform full cross-sections: the z-score of a row depends on the other tickers that day.
    """

    def __init__(self, columns: Sequence[str] | None = None, *, clip: float = 3.0) -> None:
        """``columns``: features to z-score; default all float features (others pass through)."""
        if clip <= 0:
            raise ValueError(f"clip must be > 0, got {clip}")
        self.columns = tuple(columns) if columns is not None else None
        self.clip = clip
        self.fit_start: dt.date | None = None
        self.fit_end: dt.date | None = None
        self.fill_values_: dict[str, float] = {}
        self.zscored_: tuple[str, ...] = ()

    def fit(self, panel: Panel, start: dt.date, end: dt.date) -> Self:
        """Learn fill values on ``panel``, whose rows must all be dated in ``[start, end]``."""
        if start > end:
            raise ValueError(f"fit window start {start} is after end {end}")
        if panel.frame.height == 0:
            raise ValueError("cannot fit on an empty panel")
        lo, hi = panel.frame["date"].min(), panel.frame["date"].max()
        if lo < start or hi > end:
            raise ValueError(
                f"fit got rows dated {lo}..{hi} outside the window {start}..{end}; "
                "pass panel.between(start, end)"
            )
        schema = panel.frame.schema
        if self.columns is None:
            zs = tuple(c for c in panel.feature_columns if schema[c].is_float())
        else:
            zs = self.columns
        unknown = [c for c in zs if c not in panel.feature_columns]
        if unknown:
            raise ValueError(f"columns {unknown} are not features of the panel")
        self.zscored_ = zs
        normed = self._zscore(panel.frame, panel.feature_columns)
        med = normed.select(pl.col(c).median() for c in panel.feature_columns).row(0, named=True)
        self.fill_values_ = {c: 0.0 if v is None else float(v) for c, v in med.items()}
        self.fit_start, self.fit_end = start, end
        return self

    def transform(self, panel: Panel) -> Panel:
        """Normalized copy of ``panel``: features Float64, z-scored where chosen, no NULLs."""
        if self.fit_start is None:
            raise RuntimeError("CrossSectionalNormalizer.transform called before fit")
        missing = [c for c in panel.feature_columns if c not in self.fill_values_]
        if missing:
            raise ValueError(f"features {missing} were not seen in fit")
        frame = self._zscore(panel.frame, panel.feature_columns)
        frame = frame.with_columns(pl.col(c).fill_null(self.fill_values_[c]) for c in panel.feature_columns)
        return replace(panel, frame=frame)

    def _zscore(self, frame: pl.DataFrame, features: Sequence[str]) -> pl.DataFrame:
        """Cast features to Float64 (NaN/inf -> NULL) and robust-z-score ``self.zscored_`` per date."""
        as_f = [pl.col(c).cast(pl.Float64) for c in features]
        frame = frame.with_columns(
            pl.when(x.is_finite()).then(x).alias(c) for x, c in zip(as_f, features, strict=True)
        )
        zs = self.zscored_
        frame = frame.with_columns(pl.col(c).median().over("date").alias(f"_med_{c}") for c in zs)
        frame = frame.with_columns(
            *((pl.col(c) - pl.col(f"_med_{c}")).abs().median().over("date").alias(f"_mad_{c}") for c in zs),
            *(pl.col(c).std(ddof=0).over("date").alias(f"_sd_{c}") for c in zs),
        )
        out = []
        for c in zs:
            x, mad, sd = pl.col(c), pl.col(f"_mad_{c}"), pl.col(f"_sd_{c}")
            scale = pl.when(mad > 0).then(MAD_TO_SIGMA * mad).when(sd > 0).then(sd)
            z = pl.when(scale.is_not_null()).then((x - pl.col(f"_med_{c}")) / scale).otherwise(x * 0.0)
            out.append(z.clip(-self.clip, self.clip).alias(c))
        return frame.with_columns(out).drop([f"_{k}_{c}" for c in zs for k in ("med", "mad", "sd")])
