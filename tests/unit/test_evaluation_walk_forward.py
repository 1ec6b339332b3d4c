"""Walk-forward evaluation: origins, point-in-time fits and weights, realized targets, comparison."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import polars as pl
import pytest

from model_code.evaluation.diebold_mariano import dm_test
from model_code.evaluation.walk_forward import (
    OUTPUT_COLUMNS,
    compare_to_random_walk,
    monthly_origins,
    origin_steps,
    realized_losses,
    run_walk_forward,
)
from model_code.features.synthetic import synthetic_bars
from model_code.features.targets import build_targets
from model_code.forecasting import catalog
from model_code.forecasting.ensemble import ensemble_weights

BASELINES = catalog.select([])
ORIGINS = monthly_origins(dt.date(2015, 9, 1), dt.date(2015, 12, 31))
KW = {"history": 250, "min_history": 100, "workers": 1}


@pytest.fixture(scope="module")
def bars() -> pl.DataFrame:
    return synthetic_bars(3, 400, seed=11)


@pytest.fixture(scope="module")
def evaluated(bars: pl.DataFrame) -> pl.DataFrame:
    return run_walk_forward(bars, BASELINES, ORIGINS, **KW)


def test_monthly_origins_are_first_sessions() -> None:
    got = monthly_origins(dt.date(2019, 1, 1), dt.date(2019, 3, 31))
    assert got == [dt.date(2019, 1, 2), dt.date(2019, 2, 1), dt.date(2019, 3, 1)]
    assert monthly_origins(dt.date(2019, 1, 3), dt.date(2019, 2, 28)) == [dt.date(2019, 2, 1)]
    # Sessions between monthly origins have a median of 21: a 63-session forecast overlaps the
    # next two origins' (3 steps); with the Jan/Feb gaps alone (21, 19 -> 20) it overlaps three.
    year = monthly_origins(dt.date(2019, 1, 1), dt.date(2019, 12, 31))
    assert [origin_steps(h, year) for h in (1, 5, 21, 63)] == [1, 1, 1, 3]
    assert origin_steps(63, got) == 4 and origin_steps(63, got[:1]) == 1


def test_end_to_end_shape(evaluated: pl.DataFrame) -> None:
    assert [dt.date(2015, 9, 1), dt.date(2015, 10, 1), dt.date(2015, 11, 2), dt.date(2015, 12, 1)] == ORIGINS
    assert evaluated.columns == list(OUTPUT_COLUMNS)
    assert evaluated.height == 4 * 3 * 3 * 4  # origins x tickers x (2 baselines + ensemble) x horizons
    assert set(evaluated["model"]) == {"random_walk", "drift", "ensemble"}
    assert (evaluated["target_date"] > evaluated["origin"]).all()
    assert evaluated["actual"].null_count() == 0  # the panel runs to 2016-08, past every target
    table = compare_to_random_walk(evaluated)
    assert table.height == 3 * 4
    rw = table.filter(pl.col("model") == "random_walk")
    assert (rw["rmse_ratio"] == 1.0).all() and (rw["dm_p"] == 1.0).all()
    drift = table.filter(pl.col("model") == "drift")
    assert drift["rmse_ratio"].is_finite().all() and (drift["n_origins"] == 4).all()
    assert (drift["n"] == 12).all() and drift["dm_steps"].to_list() == [1, 1, 1, 3]


def test_actual_equals_build_targets(bars: pl.DataFrame, evaluated: pl.DataFrame) -> None:
    targets = build_targets(bars)
    for h in (1, 5, 21, 63):
        rows = evaluated.filter(pl.col("horizon") == h).join(
            targets.select("ticker", pl.col("date").alias("origin"), f"fwd_ret_{h}", f"target_date_{h}"),
            on=["ticker", "origin"],
        )
        assert rows.height == 4 * 3 * 3
        assert np.allclose(rows["actual"].to_numpy(), rows[f"fwd_ret_{h}"].to_numpy(), rtol=0, atol=1e-15)
        assert (rows["target_date"] == rows[f"target_date_{h}"]).all()


def test_actual_is_null_when_the_target_session_has_no_bar(bars: pl.DataFrame) -> None:
    origin = ORIGINS[0]
    day = bars.filter(pl.col("date") > origin)["date"].min()
    gapped = bars.filter((pl.col("ticker") != "T000") | (pl.col("date") != day))
    out = run_walk_forward(gapped, BASELINES, ORIGINS[:1], **KW).filter(pl.col("horizon") == 1)
    assert out.filter(pl.col("ticker") == "T000")["actual"].null_count() == 3
    assert out.filter(pl.col("ticker") != "T000")["actual"].null_count() == 0


def test_forecasts_ignore_bars_after_the_origin(bars: pl.DataFrame, evaluated: pl.DataFrame) -> None:
    last = ORIGINS[2]
    rng = np.random.default_rng(0)
    shocked = bars.with_columns(  # rewrite every price after the origin
        pl.when(pl.col("date") > last)
        .then(pl.col(c) * pl.Series(rng.uniform(0.2, 5.0, bars.height)))
        .otherwise(pl.col(c))
        .alias(c)
        for c in ("close", "adj_close")
    )
    for variant in (bars.filter(pl.col("date") <= last), shocked):
        out = run_walk_forward(variant, BASELINES, ORIGINS[:3], **KW)
        cols = [c for c in OUTPUT_COLUMNS if c not in ("fit_seconds", "actual")]
        assert out.select(cols).equals(evaluated.filter(pl.col("origin") <= last).select(cols))


def _yhat(frame: pl.DataFrame, origin: dt.date, model: str, h: int) -> np.ndarray:
    sel = frame.filter((pl.col("origin") == origin) & (pl.col("model") == model) & (pl.col("horizon") == h))
    return sel.sort("ticker")["yhat"].to_numpy()


def test_ensemble_weights_use_only_realized_earlier_forecasts(evaluated: pl.DataFrame) -> None:
    first, second = ORIGINS[0], ORIGINS[1]
    # First origin: nothing realized, equal weights (the random walk forecasts 0).
    for h in (1, 5, 21, 63):
        expected = 0.5 * _yhat(evaluated, first, "drift", h)
        assert np.allclose(_yhat(evaluated, first, "ensemble", h), expected)
    # Second origin, h=1: the first origin's one-day forecasts are realized -> inverse-MSE weights.
    losses = realized_losses(evaluated.filter(pl.col("origin") == first), second)
    known = {m: mse for m, h, mse, _ in losses.iter_rows() if h == 1}
    w = ensemble_weights(known)
    assert w["drift"] != pytest.approx(0.5)
    assert np.allclose(
        _yhat(evaluated, second, "ensemble", 1), w["drift"] * _yhat(evaluated, second, "drift", 1)
    )
    # h=63: the first origin's targets close after the second origin. Their losses are known in
    # the full panel (a leaky scheme would use them) but must not move the weights.
    early = evaluated.filter((pl.col("origin") == first) & (pl.col("horizon") == 63))
    assert early["actual"].is_finite().all() and (early["target_date"] > second).all()
    assert np.allclose(_yhat(evaluated, second, "ensemble", 63), 0.5 * _yhat(evaluated, second, "drift", 63))


def test_realized_losses_drop_unrealized_rows() -> None:
    o1, o2 = dt.date(2020, 1, 2), dt.date(2020, 2, 3)

    def rows(target: dt.date, drift_yhat: float) -> pl.DataFrame:
        return pl.DataFrame(
            {
                "origin": [o1, o1],
                "ticker": ["A", "A"],
                "model": ["drift", "random_walk"],
                "horizon": [5, 5],
                "target_date": [target, target],
                "yhat": [drift_yhat, 0.0],
                "actual": [0.01, 0.01],
            }
        ).with_columns(pl.col("horizon").cast(pl.Int32))

    realized = rows(dt.date(2020, 1, 9), 0.02).with_columns(pl.lit("A").alias("ticker"))
    late = rows(dt.date(2020, 3, 2), 5.0).with_columns(pl.lit("B").alias("ticker"))  # huge loss, not realized
    base = realized_losses(realized, o2)
    assert base.equals(realized_losses(pl.concat([realized, late]), o2))
    assert dict(zip(base["model"], base["mse"], strict=True)) == pytest.approx(
        {"drift": 0.0001, "random_walk": 0.0001}
    )
    assert realized_losses(realized, dt.date(2020, 1, 8)).is_empty()  # target not closed yet
    one_model = realized.filter(pl.col("model") == "drift").with_columns(pl.lit("C").alias("ticker"))
    keyed = realized_losses(pl.concat([realized, one_model]), o2)  # C lacks a random walk row
    assert (keyed["n"] == 1).all()


def test_dm_runs_on_cross_sectional_mean_loss_per_origin() -> None:
    rng = np.random.default_rng(3)
    origins = monthly_origins(dt.date(2018, 1, 1), dt.date(2019, 12, 31))
    n_t = 5
    common = np.repeat(rng.standard_normal(len(origins)), n_t)  # one market: tickers co-move
    base = pl.DataFrame(
        {
            "origin": [o for o in origins for _ in range(n_t)],
            "ticker": np.tile([f"T{i}" for i in range(n_t)], len(origins)),
            "horizon": 1,
            "actual": common + 0.1 * rng.standard_normal(len(origins) * n_t),
        }
    ).with_columns(pl.col("horizon").cast(pl.Int32))
    ev = pl.concat(
        [
            base.with_columns(pl.lit("random_walk").alias("model"), pl.lit(0.0).alias("yhat")),
            base.with_columns(pl.lit("m").alias("model"), (0.5 * pl.col("actual")).alias("yhat")),
        ]
    )
    row = compare_to_random_walk(ev).filter(pl.col("model") == "m").row(0, named=True)
    se = ev.with_columns(((pl.col("yhat") - pl.col("actual")) ** 2).alias("se"))
    per = se.group_by("origin", "model").agg(pl.col("se").mean()).sort("origin")
    a = per.filter(pl.col("model") == "m")["se"].to_numpy()
    b = per.filter(pl.col("model") == "random_walk")["se"].to_numpy()
    assert row["n_origins"] == len(origins) and row["n"] == len(origins) * n_t
    assert row["dm_stat"] == pytest.approx(dm_test(a, b, 1).stat)
    assert row["rmse_ratio"] == pytest.approx(0.5) and row["dm_stat"] < 0
    assert math.isfinite(row["dm_p"])
