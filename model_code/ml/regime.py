"""Market regimes: a Gaussian HMM (or mixture) on market-level daily features, point in time.

Inputs (:func:`market_regime_inputs`): ``mkt_ret``, the equal-weight mean of the universe's daily
log returns, and ``mkt_vol``, its realized volatility over the last 21 dates, annualized
(std * sqrt(252)). The model sees (mkt_ret, ln mkt_vol), standardized with the training mean/std.

States are sorted by their mean ln vol, ascending (state 0 = calmest), so labels are stable across
refits and seeds. For the HMM, :meth:`RegimeModel.state_probabilities` returns FILTERED
probabilities P(state_T | x_1..x_T) from a forward pass with the fitted parameters, never the
smoothed ones: a date's probabilities do not depend on later data. (The parameters themselves
come from the training window; fit only on data up to the training end.)
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal, Self

import numpy as np
import polars as pl
from scipy.special import logsumexp
from scipy.stats import multivariate_normal
from threadpoolctl import threadpool_limits

from model_code.ml.artifacts import read_meta, write_meta

VOL_WINDOW = 21
ANNUALIZATION = 252
INPUT_COLUMNS: tuple[str, str] = ("mkt_ret", "mkt_vol")


def market_regime_inputs(panel: pl.DataFrame, *, vol_window: int = VOL_WINDOW) -> pl.DataFrame:
    """Market-level series ``(date, mkt_ret, mkt_vol)``, one row per date, sorted by date.

    ``panel`` is either daily log returns ``(ticker, date, ret)`` or bars ``(ticker, date, close
    [, adj_close])``, whose returns are ln(px[t] / px[t-1]) per ticker with px = coalesce(adj_close,
    close). ``mkt_ret`` (log return) is the mean over tickers with a return that date; ``mkt_vol``
    the std of the last ``vol_window`` values of mkt_ret * sqrt(252). Warm-up dates (no full
    window) are dropped. Point in time: rows up to T depend only on panel rows dated <= T.
    """
    if "ret" in panel.columns:
        rets = panel.select("ticker", "date", pl.col("ret").cast(pl.Float64))
    elif "close" in panel.columns:
        px = pl.coalesce("adj_close", "close") if "adj_close" in panel.columns else pl.col("close")
        rets = (
            panel.sort("ticker", "date")
            .with_columns(pl.when(px > 0).then(px).log().diff().over("ticker").alias("ret"))
            .select("ticker", "date", "ret")
        )
    else:
        raise ValueError(f"panel needs a 'ret' or a 'close' column; found {panel.columns}")
    mkt = (
        rets.filter(pl.col("ret").is_finite())
        .group_by("date")
        .agg(pl.col("ret").mean().alias("mkt_ret"))
        .sort("date")
    )
    vol = pl.col("mkt_ret").rolling_std(vol_window) * math.sqrt(ANNUALIZATION)
    return mkt.with_columns(vol.alias("mkt_vol")).filter(pl.col("mkt_vol") > 0)


def _forward_filter(log_b: np.ndarray, pi: np.ndarray, a: np.ndarray) -> np.ndarray:
    """Filtered state probabilities P(s_t | x_1..x_t), shape (T, k), from log emissions (T, k).

    Scaled forward recursion: alpha_t ~ (alpha_{t-1} @ A) * b_t, renormalized every step, with
    b_t rescaled by its max so nothing underflows. Row t uses rows <= t only.
    """
    b = np.exp(log_b - log_b.max(axis=1, keepdims=True))
    out = np.empty_like(b)
    alpha = pi
    for t in range(b.shape[0]):
        alpha = (alpha @ a if t else alpha) * b[t]
        total = alpha.sum()
        alpha = alpha / total if total > 0 else b[t] / b[t].sum()  # impossible path: restart
        out[t] = alpha
    return out


class RegimeModel:
    """K-state market regime model (``method="hmm"``: GaussianHMM, ``"gmm"``: GaussianMixture).

    Parameters are kept in plain arrays (ordered by ascending mean ln vol) so prediction does
    not depend on the fitting library, and the artifact is a JSON file.
    """

    def __init__(
        self,
        n_states: int = 2,
        method: Literal["hmm", "gmm"] = "hmm",
        seed: int = 0,
        *,
        n_init: int = 3,
        n_iter: int = 200,
    ) -> None:
        if not 2 <= n_states <= 4:
            raise ValueError(f"n_states must be 2..4, got {n_states}")
        if method not in ("hmm", "gmm"):
            raise ValueError(f"method must be 'hmm' or 'gmm', got {method!r}")
        self.n_states, self.method, self.seed = n_states, method, seed
        self.n_init, self.n_iter = n_init, n_iter
        self.x_mean = np.zeros(2)
        self.x_scale = np.ones(2)
        self.startprob: np.ndarray | None = None  # (k,) initial (hmm) or mixture (gmm) weights
        self.transmat: np.ndarray | None = None  # (k, k), hmm only
        self.means = np.empty(0)  # (k, 2) in standardized units
        self.covars = np.empty(0)  # (k, 2, 2)

    @property
    def family(self) -> str:
        return f"regime_{self.method}"

    @property
    def params(self) -> dict[str, Any]:
        return {
            "n_states": self.n_states,
            "method": self.method,
            "seed": self.seed,
            "n_init": self.n_init,
            "n_iter": self.n_iter,
        }

    def _design(self, frame: pl.DataFrame) -> tuple[pl.Series, np.ndarray]:
        clean = frame.drop_nulls(list(INPUT_COLUMNS)).filter(pl.col("mkt_vol") > 0).sort("date")
        x = np.column_stack([clean["mkt_ret"].to_numpy(), np.log(clean["mkt_vol"].to_numpy())])
        return clean["date"], x

    def fit(self, market_frame: pl.DataFrame) -> Self:
        """Fit on ``(date, mkt_ret, mkt_vol)`` rows (nulls dropped); best of ``n_init`` seeds."""
        _, x = self._design(market_frame)
        if x.shape[0] < 10 * self.n_states:
            raise ValueError(f"regime model needs >= {10 * self.n_states} dates, got {x.shape[0]}")
        self.x_mean, self.x_scale = x.mean(axis=0), np.where(x.std(axis=0) > 0, x.std(axis=0), 1.0)
        z = (x - self.x_mean) / self.x_scale
        best, best_score = None, -np.inf
        for i in range(self.n_init):
            # A few thousand dates: one thread is fastest and avoids OpenMP contention.
            with threadpool_limits(limits=1):
                model = self._new(self.seed + i).fit(z)
                score = float(model.score(z))
            if np.isfinite(score) and score > best_score:
                best, best_score = model, score
        if best is None:
            raise RuntimeError("regime model: every restart failed to fit")
        if self.method == "hmm":
            pi, a, means, cov = best.startprob_, best.transmat_, best.means_, best.covars_
        else:
            pi, a, means, cov = best.weights_, None, best.means_, best.covariances_
        order = np.lexsort((means[:, 0], means[:, 1]))  # by mean ln vol, then mean return
        self.startprob, self.means, self.covars = pi[order], means[order], cov[order]
        self.transmat = None if a is None else a[np.ix_(order, order)]
        return self

    def _new(self, seed: int) -> Any:
        if self.method == "hmm":
            from hmmlearn.hmm import GaussianHMM

            return GaussianHMM(
                n_components=self.n_states,
                covariance_type="full",
                n_iter=self.n_iter,
                random_state=seed,
                tol=1e-4,
            )
        from sklearn.mixture import GaussianMixture

        return GaussianMixture(
            n_components=self.n_states, covariance_type="full", max_iter=self.n_iter, random_state=seed
        )

    def _log_emissions(self, z: np.ndarray) -> np.ndarray:
        return np.column_stack(
            [
                multivariate_normal(mean=m, cov=c, allow_singular=True).logpdf(z).reshape(-1)
                for m, c in zip(self.means, self.covars, strict=True)
            ]
        )

    def state_probabilities(self, market_frame: pl.DataFrame) -> pl.DataFrame:
        """``(date, p_state_0..p_state_{k-1})`` per date with complete inputs; rows sum to 1.

        HMM: filtered (forward) probabilities, started at the fitted initial distribution on the
        frame's first row. GMM: per-date posterior responsibilities. Point in time either way.
        """
        if self.startprob is None:
            raise RuntimeError("regime model is not fitted")
        dates, x = self._design(market_frame)
        cols = [f"p_state_{j}" for j in range(self.n_states)]
        if x.shape[0] == 0:
            return pl.DataFrame({"date": dates, **{c: pl.Series([], dtype=pl.Float64) for c in cols}})
        log_b = self._log_emissions((x - self.x_mean) / self.x_scale)
        if self.transmat is not None:
            probs = _forward_filter(log_b, self.startprob, self.transmat)
        else:
            with np.errstate(divide="ignore"):
                post = np.log(self.startprob) + log_b
            probs = np.exp(post - logsumexp(post, axis=1, keepdims=True))
        return pl.DataFrame({"date": dates, **{c: probs[:, j] for j, c in enumerate(cols)}})

    def predict_states(self, market_frame: pl.DataFrame) -> pl.DataFrame:
        """``(date, state)``: the most probable state per date (from the filtered probabilities)."""
        probs = self.state_probabilities(market_frame)
        arr = probs.drop("date").to_numpy()
        return pl.DataFrame({"date": probs["date"], "state": np.argmax(arr, axis=1).astype(np.int8)})

    def state_summary(self) -> pl.DataFrame:
        """Per state: mean daily log return and mean annualized vol (geometric), in input units."""
        raw = self.means * self.x_scale + self.x_mean
        return pl.DataFrame(
            {"state": list(range(self.n_states)), "mean_ret": raw[:, 0], "mean_vol": np.exp(raw[:, 1])}
        )

    def save(self, path: str | Path) -> Path:
        """Write the artifact folder: ``meta.json`` holding params and fitted arrays."""
        if self.startprob is None:
            raise RuntimeError("regime model is not fitted; nothing to save")
        path = Path(path)
        state = {
            "x_mean": self.x_mean,
            "x_scale": self.x_scale,
            "startprob": self.startprob,
            "transmat": self.transmat,
            "means": self.means,
            "covars": self.covars,
        }
        arrays = {k: None if v is None else v.tolist() for k, v in state.items()}
        write_meta(path, {"family": self.family, "params": self.params, "arrays": arrays})
        return path

    @classmethod
    def load(cls, path: str | Path) -> Self:
        meta = read_meta(path)
        obj = cls(**meta["params"])
        if meta["family"] != obj.family:
            raise ValueError(f"{path} holds a {meta['family']!r} model, not {obj.family!r}")
        for key, value in meta["arrays"].items():
            setattr(obj, key, None if value is None else np.asarray(value, dtype=np.float64))
        return obj
