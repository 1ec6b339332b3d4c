"""ML scores as return forecasts: calibration to log-return units and split-conformal intervals.

A trained model (:class:`~model_code.ml.training.TrainedModel`) outputs a *score*: with the
default label (``fwd_ret_z`` ranked per date) only its order across tickers means anything. To
publish it beside the statistical forecasts (``forecasts.predictions``: ``yhat`` = cumulative
log return from the as_of close over h sessions), :class:`ReturnCalibration` maps it to return
units on the VALIDATION window, against the raw ``fwd_ret_h``:

* ``yhat = intercept + slope * score``. The slope comes from within-date variation only (score
  and return demeaned per date), i.e. from the model's ranking skill, not from a chance
  correlation between its average score and the market's moves in a short window. It is
  floored at 0: a model whose validation ranking was backwards forecasts the intercept for every
  ticker rather than a flipped ranking fitted on the validation window. The intercept is the
  validation mean h-session return minus ``slope * mean score`` (the drift of that window).
* intervals are split-conformal on scaled residuals (locally weighted conformal): with the
  ticker's h-session volatility scale ``s = rv_21 * sqrt(h / 252)`` (rv_21 annualized, known at
  the date's close), the residuals ``(fwd_ret_h - yhat) / s`` of the validation rows give
  empirical quantiles q_0.025, q_0.10, q_0.90, q_0.975 (finite-sample conformal ranks), and the
  interval of a new row is ``yhat + q * s``. A volatile ticker gets a wider interval than an
  index. Rows without rv_21 use the validation median scale. Coverage is approximate: residuals
  of one date are correlated (market moves) and overlapping h-session labels are not
  exchangeable, so the guarantee of exchangeable split-conformal does not strictly hold.
* ``vol_forecast = s * std(scaled residuals)``: the forecast std of the cumulative log return
  around yhat, in the same units as the GARCH family's vol_forecast.

:class:`ReturnForecaster` bundles the learner, its train-window normalizer and the calibration
into one registry artifact, so scoring needs no re-read of training data. No Dagster imports.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from model_code.forecasting.predictions import PREDICTION_SCHEMA
from model_code.ml.artifacts import read_meta, write_meta
from model_code.ml.dataset import CrossSectionalNormalizer
from model_code.ml.models import load_learner
from model_code.ml.training import TrainedModel, Window, predict

TRADING_DAYS = 252
SCALE_FEATURE = "rv_21"
# Interval bound -> conformal level of the scaled residual (central 80 % and 95 % intervals).
INTERVAL_LEVELS: dict[str, float] = {"lower_95": 0.025, "lower_80": 0.10, "upper_80": 0.90, "upper_95": 0.975}
FORECAST_COLUMNS = ("ticker", "date", "score", "yhat", *INTERVAL_LEVELS, "vol_forecast")
PIPELINE_FILE = "forecaster.json"
WRAPPER = "return_forecaster"


def horizon_scale(rv_annual: np.ndarray, horizon: int) -> np.ndarray:
    """``rv * sqrt(h / 252)``: the h-session log-return std implied by annualized vol ``rv``;
    NaN where rv is missing, non-finite or not positive."""
    rv = np.asarray(rv_annual, dtype=np.float64)
    ok = np.isfinite(rv) & (rv > 0)
    return np.where(ok, rv, np.nan) * math.sqrt(horizon / TRADING_DAYS)


def conformal_quantile(values: np.ndarray, level: float) -> float:
    """The split-conformal quantile of ``values`` at ``level`` in (0, 1).

    Upper levels take the ``ceil((n+1) * level)``-th smallest value (so a new exchangeable value
    is below it with probability >= level), lower levels the ``floor((n+1) * level)``-th (so it
    is above it with probability >= 1 - level); ranks are clipped to ``[1, n]``.
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    v = np.sort(np.asarray(values, dtype=np.float64))
    v = v[np.isfinite(v)]
    if v.size == 0:
        raise ValueError("no finite values to take a quantile of")
    n = v.size
    k = math.ceil((n + 1) * level) if level >= 0.5 else math.floor((n + 1) * level)
    return float(v[min(max(k, 1), n) - 1])


@dataclass(frozen=True)
class ReturnCalibration:
    """Score -> h-session log return, and the scaled-residual quantiles of its intervals.

    ``quantiles`` maps each interval bound (``lower_95`` ... ``upper_95``) to its conformal
    quantile of ``(y - yhat) / scale``; ``residual_std`` is the std of those scaled residuals;
    ``fallback_scale`` the validation median scale, used where rv_21 is missing; ``rows`` the
    validation rows it was fitted on.
    """

    horizon: int
    intercept: float
    slope: float
    quantiles: dict[str, float]
    residual_std: float
    fallback_scale: float
    rows: int
    scale_feature: str = SCALE_FEATURE

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReturnCalibration:
        return cls(**{**data, "quantiles": dict(data["quantiles"])})

    def yhat(self, score: np.ndarray) -> np.ndarray:
        return self.intercept + self.slope * np.asarray(score, dtype=np.float64)

    def scale(self, rv_annual: np.ndarray) -> np.ndarray:
        """Per-row h-session scale; ``fallback_scale`` where rv is missing."""
        s = horizon_scale(rv_annual, self.horizon)
        return np.where(np.isfinite(s), s, self.fallback_scale)

    def summary(self) -> dict[str, float]:
        """Flat floats for the registry's cv_metrics and the asset metadata."""
        return {
            "cal_intercept": self.intercept,
            "cal_slope": self.slope,
            "cal_residual_std": self.residual_std,
            "cal_rows": float(self.rows),
            **{f"cal_q_{k}": v for k, v in self.quantiles.items()},
        }


def fit_calibration(frame: pl.DataFrame, horizon: int) -> ReturnCalibration:
    """Fit :class:`ReturnCalibration` on validation rows ``date, score, y, rv`` (see module docs).

    ``y`` is the realized h-session log return ``fwd_ret_h``; ``rv`` the raw annualized rv_21 of
    the row (NULL allowed). Rows with a non-finite score or y are ignored.
    """
    data = frame.select("date", *(pl.col(c).cast(pl.Float64) for c in ("score", "y", "rv"))).filter(
        pl.col("score").is_finite() & pl.col("y").is_finite()
    )
    if data.height < 2:
        raise ValueError(f"calibration needs at least 2 validation rows, got {data.height}")
    demeaned = data.select((pl.col(c) - pl.col(c).mean().over("date")).alias(c) for c in ("score", "y"))
    ds, dy = demeaned["score"].to_numpy(), demeaned["y"].to_numpy()
    sxx = float(ds @ ds)
    slope = max(float(ds @ dy) / sxx, 0.0) if sxx > 0 else 0.0
    score, y = data["score"].to_numpy(), data["y"].to_numpy()
    intercept = float(y.mean() - slope * score.mean())
    raw_scale = horizon_scale(data["rv"].fill_null(np.nan).to_numpy(), horizon)
    finite = raw_scale[np.isfinite(raw_scale)]
    fallback = float(np.median(finite)) if finite.size else float(np.std(y)) or 1.0
    scale = np.where(np.isfinite(raw_scale), raw_scale, fallback)
    z = (y - (intercept + slope * score)) / scale
    return ReturnCalibration(
        horizon=horizon,
        intercept=intercept,
        slope=slope,
        quantiles={k: conformal_quantile(z, q) for k, q in INTERVAL_LEVELS.items()},
        residual_std=float(np.std(z, ddof=1)),
        fallback_scale=fallback,
        rows=int(data.height),
    )


def _normalizer_state(norm: CrossSectionalNormalizer) -> dict[str, Any]:
    return {
        "columns": None if norm.columns is None else list(norm.columns),
        "clip": norm.clip,
        "fit_start": norm.fit_start,
        "fit_end": norm.fit_end,
        "fill_values": norm.fill_values_,
        "zscored": list(norm.zscored_),
    }


def _normalizer_from_state(state: Mapping[str, Any]) -> CrossSectionalNormalizer:
    norm = CrossSectionalNormalizer(state["columns"], clip=state["clip"])
    norm.fit_start = dt.date.fromisoformat(state["fit_start"])
    norm.fit_end = dt.date.fromisoformat(state["fit_end"])
    norm.fill_values_ = {k: float(v) for k, v in state["fill_values"].items()}
    norm.zscored_ = tuple(state["zscored"])
    return norm


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot serialize {type(value).__name__}")


def _window(value: Any) -> Window:
    return dt.date.fromisoformat(value[0]), dt.date.fromisoformat(value[1])


@dataclass(frozen=True, eq=False)
class ReturnForecaster:
    """A trained model and its calibration: features at a close -> h-session return forecasts.

    ``data_end`` is the last session whose bars the model learned from (the latest label end of
    its training and validation rows): its forecasts are point in time only for as_of >=
    data_end (:meth:`usable_at`). ``train``/``valid`` are the inclusive windows it was fitted
    and early-stopped on.
    """

    trained: TrainedModel
    calibration: ReturnCalibration
    data_end: dt.date
    train: Window
    valid: Window
    metrics: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.trained.regime is not None:
            raise ValueError(
                "a ReturnForecaster cannot carry regime features (they need the market frame at "
                "scoring time); train without the market frame"
            )
        if self.calibration.horizon != self.trained.horizon:
            raise ValueError(
                f"calibration is for horizon {self.calibration.horizon}, model for {self.trained.horizon}"
            )

    @property
    def family(self) -> str:
        return self.trained.model.family

    @property
    def horizon(self) -> int:
        return self.trained.horizon

    @property
    def feature_columns(self) -> tuple[str, ...]:
        return self.trained.feature_columns

    @property
    def params(self) -> dict[str, Any]:
        """The learner's hyperparameters plus the label it was trained on (JSON-serializable)."""
        cfg = self.trained.config
        return {
            **self.trained.model.params,
            "label": cfg.get("label"),
            "label_transform": cfg.get("label_transform"),
        }

    def usable_at(self, as_of: dt.date) -> bool:
        """True when everything the model learned from was known at the close of ``as_of``."""
        return self.data_end <= as_of

    def forecast(self, features: pl.DataFrame) -> pl.DataFrame:
        """:data:`FORECAST_COLUMNS` for every row of ``features`` (``build_daily_features``
        layout): the raw score, yhat (h-session log return), the 80/95 % interval bounds and
        vol_forecast. A date's rows depend on that date's feature rows only."""
        scored = predict(self.trained, features)
        cal = self.calibration
        rv = (pl.col(cal.scale_feature) if cal.scale_feature in features.columns else pl.lit(None)).cast(
            pl.Float64
        )
        keyed = features.select("ticker", pl.col("date").cast(pl.Date), rv.alias("_rv"))
        joined = scored.join(keyed, on=["ticker", "date"], how="left", maintain_order="left")
        rv_values = joined["_rv"].fill_null(np.nan).to_numpy()
        score = scored["score"].to_numpy()
        yhat = cal.yhat(score)
        scale = cal.scale(rv_values)
        bounds = {k: yhat + q * scale for k, q in cal.quantiles.items()}
        return scored.with_columns(
            pl.Series("yhat", yhat),
            *(pl.Series(k, v) for k, v in bounds.items()),
            pl.Series("vol_forecast", scale * cal.residual_std),
        ).select(FORECAST_COLUMNS)

    def save(self, path: str | Path) -> Path:
        """The learner's artifact (native LightGBM text / joblib) plus ``forecaster.json``."""
        path = Path(path)
        self.trained.model.save(path)
        write_meta(path, {**read_meta(path), "wrapper": WRAPPER})
        t = self.trained
        state = {
            "horizon": t.horizon,
            "feature_columns": list(t.feature_columns),
            "config": t.config,
            "valid_metrics": t.valid_metrics,
            "train_label_end_max": t.train_label_end_max,
            "normalizer": _normalizer_state(t.normalizer),
            "calibration": self.calibration.to_dict(),
            "data_end": self.data_end,
            "train": list(self.train),
            "valid": list(self.valid),
            "metrics": self.metrics,
        }
        text = json.dumps(state, default=_json_default, indent=2, allow_nan=True)
        (path / PIPELINE_FILE).write_text(text)
        return path

    @classmethod
    def load(cls, path: str | Path) -> ReturnForecaster:
        """Read an artifact written by :meth:`save`; forecasts are bit-identical."""
        meta = read_meta(path)
        if meta.get("wrapper") != WRAPPER:
            raise ValueError(f"{path} is not a {WRAPPER} artifact")
        state = json.loads((Path(path) / PIPELINE_FILE).read_text())
        end_max = state["train_label_end_max"]
        trained = TrainedModel(
            model=load_learner(path),
            normalizer=_normalizer_from_state(state["normalizer"]),
            feature_columns=tuple(state["feature_columns"]),
            horizon=int(state["horizon"]),
            valid_metrics=state["valid_metrics"],
            config=state["config"],
            regime=None,
            train_label_end_max=dt.date.fromisoformat(end_max) if end_max else None,
        )
        return cls(
            trained=trained,
            calibration=ReturnCalibration.from_dict(state["calibration"]),
            data_end=dt.date.fromisoformat(state["data_end"]),
            train=_window(state["train"]),
            valid=_window(state["valid"]),
            metrics=state.get("metrics", {}),
        )


def prediction_rows(
    forecast: pl.DataFrame, *, as_of: dt.date, model: str, horizon: int, target_date: dt.date
) -> pl.DataFrame:
    """:meth:`ReturnForecaster.forecast` rows dated ``as_of`` in the ``forecasts.predictions``
    layout. ``fit_seconds`` is NULL: an ML model is not fitted per ticker (its training time is
    in the ``ml/model`` materialization)."""
    other = forecast.filter(pl.col("date") != as_of)
    if other.height:
        raise ValueError(f"forecast rows dated {other['date'].unique().to_list()} passed for as_of {as_of}")
    return forecast.select(
        pl.lit(as_of).alias("as_of"),
        "ticker",
        pl.lit(model).alias("model"),
        pl.lit(horizon).alias("horizon"),
        pl.lit(target_date).alias("target_date"),
        "yhat",
        "lower_80",
        "upper_80",
        "lower_95",
        "upper_95",
        "vol_forecast",
        pl.lit(None).alias("fit_seconds"),
    ).cast(PREDICTION_SCHEMA)
