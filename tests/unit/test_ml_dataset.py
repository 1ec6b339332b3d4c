"""Panels (features x one horizon's label) and the training-window-only normalizer."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from model_code.features import build_daily_features, build_targets
from model_code.features.daily import NUMERIC_FEATURES
from model_code.features.synthetic import synthetic_bars
from model_code.ml.dataset import (
    LABEL,
    LABEL_END,
    CrossSectionalNormalizer,
    Panel,
    build_panel,
    sample_weights,
)

H = 5


@pytest.fixture(scope="module")
def frames() -> tuple[pl.DataFrame, pl.DataFrame]:
    bars = synthetic_bars(12, 260, seed=3, gap_fraction=0.03, close_only=2)
    return build_daily_features(bars), build_targets(bars)


@pytest.fixture(scope="module")
def panel(frames) -> Panel:
    return build_panel(*frames, H)


def test_build_panel_drops_unrealized_labels(frames, panel) -> None:
    feats, targets = frames
    realized = targets.filter(pl.col(f"fwd_ret_{H}").is_not_null()).height
    assert panel.frame.height == realized < feats.height
    assert panel.frame.columns == ["ticker", "date", *panel.feature_columns, LABEL, LABEL_END]
    assert panel.frame[LABEL].null_count() == 0 and panel.frame[LABEL_END].null_count() == 0
    assert (panel.frame[LABEL_END] > panel.frame["date"]).all()
    assert panel.horizon == H and panel.label_source == f"fwd_ret_{H}"
    assert panel.frame.select(pl.col("date").is_sorted()).item()
    # The last H bars of every ticker have no realized label yet.
    last = targets.group_by("ticker").agg(pl.col("date").sort().tail(H))
    dropped = last.explode("date").join(panel.frame, on=["ticker", "date"], how="semi")
    assert dropped.height == 0


def test_build_panel_keeps_unrealized_rows_for_prediction(frames) -> None:
    feats, targets = frames
    full = build_panel(feats, targets, H, require_label=False)
    assert full.frame.height == feats.height
    latest = full.frame.filter(pl.col("date") == full.frame["date"].max())
    assert latest[LABEL].null_count() == latest.height
    assert full.frame[LABEL].null_count() >= H * feats["ticker"].n_unique()


def test_build_panel_label_variants_and_errors(frames) -> None:
    feats, targets = frames
    z = build_panel(feats, targets, 21, label="fwd_ret_z")
    assert z.label_source == "fwd_ret_21_z"
    sig = build_panel(feats, targets, 1, label="sig_move", feature_columns=["mom_1_20"])
    assert sig.feature_columns == ("mom_1_20",)
    assert set(sig.frame[LABEL].unique().to_list()) <= {-1, 0, 1}
    with pytest.raises(ValueError, match="targets lack"):
        build_panel(feats, targets, 2)
    with pytest.raises(ValueError, match="features lack"):
        build_panel(feats, targets, H, feature_columns=["nope"])
    with pytest.raises(ValueError, match="more than once"):
        build_panel(pl.concat([feats, feats.head(1)]), targets, H)


def test_panel_helpers(panel) -> None:
    dates = panel.dates()
    assert np.all(np.diff(dates) > np.timedelta64(0, "D"))
    sub = panel.between(dates[10].astype(dt.date), dates[20].astype(dt.date))
    assert sub.frame["date"].n_unique() == 11
    assert panel.take([0, 1, 2]).frame.height == 3
    x = panel.feature_matrix()
    assert x.shape == (panel.frame.height, len(panel.feature_columns)) and x.dtype == np.float64
    assert panel.labels().shape == (panel.frame.height,)


def test_sample_weights_equal_per_date(panel) -> None:
    w = sample_weights(panel)
    assert w.mean() == pytest.approx(1.0) and (w > 0).all()
    per_date = panel.frame.with_columns(pl.Series("w", w)).group_by("date").agg(pl.col("w").sum())["w"]
    assert np.allclose(per_date.to_numpy(), per_date[0])
    assert np.array_equal(sample_weights(panel, "uniform"), np.ones(panel.frame.height))
    with pytest.raises(ValueError, match="unknown"):
        sample_weights(panel, "bogus")  # type: ignore[arg-type]


def test_robust_zscore_on_a_toy_cross_section() -> None:
    day = dt.date(2020, 1, 2)
    frame = pl.DataFrame(
        {
            "ticker": list("ABCDEF"),
            "date": [day] * 6,
            "x": [1.0, 2.0, 3.0, 4.0, 100.0, None],
            "flag": [1, 0, 1, 0, 1, 1],
            LABEL: [0.0] * 6,
            LABEL_END: [day] * 6,
        }
    )
    p = Panel(frame, ("x", "flag"), 1)
    norm = CrossSectionalNormalizer().fit(p, day, day)
    assert norm.zscored_ == ("x",)  # integer features pass through
    out = norm.transform(p).frame
    # median 3, MAD 1 -> sigma 1.4826; 100 clips at +3; NULL gets the window's median z (0).
    expected = [(v - 3.0) / 1.4826 for v in (1.0, 2.0, 3.0, 4.0)] + [3.0, 0.0]
    assert out["x"].to_list() == pytest.approx(expected)
    assert out["flag"].to_list() == [1.0, 0.0, 1.0, 0.0, 1.0, 1.0]


def test_normalizer_fit_refuses_rows_outside_window(panel) -> None:
    dates = [d.astype(dt.date) for d in panel.dates()]
    start, end = dates[0], dates[120]
    with pytest.raises(ValueError, match="outside the window"):
        CrossSectionalNormalizer().fit(panel, start, end)
    with pytest.raises(ValueError, match="outside the window"):
        CrossSectionalNormalizer().fit(panel.between(dates[5], end), dates[6], end)
    with pytest.raises(ValueError, match="after end"):
        CrossSectionalNormalizer().fit(panel.between(start, end), end, start)
    with pytest.raises(RuntimeError, match="before fit"):
        CrossSectionalNormalizer().transform(panel)
    norm = CrossSectionalNormalizer().fit(panel.between(start, end), start, end)
    assert (norm.fit_start, norm.fit_end) == (start, end)


def test_normalized_features_are_bounded_and_complete(panel) -> None:
    dates = [d.astype(dt.date) for d in panel.dates()]
    norm = CrossSectionalNormalizer().fit(panel.between(dates[0], dates[150]), dates[0], dates[150])
    out = norm.transform(panel)
    assert out.frame.height == panel.frame.height
    feats = out.frame.select(out.feature_columns)
    assert feats.null_count().sum_horizontal().item() == 0
    assert all(feats[c].dtype == pl.Float64 for c in out.feature_columns)
    z = out.frame.select(NUMERIC_FEATURES)
    assert z.select(pl.all().abs().max()).max_horizontal().item() <= 3.0
    assert out.frame[LABEL].equals(panel.frame[LABEL])


def test_normalizer_does_not_leak_from_test_window(panel) -> None:
    dates = [d.astype(dt.date) for d in panel.dates()]
    start, end = dates[0], dates[150]
    mid = dates[200]  # test window: dates[151:]; later half (> mid) gets tampered with
    fit = CrossSectionalNormalizer().fit(panel.between(start, end), start, end)
    base = fit.transform(panel).frame

    late = pl.col("date") > mid
    tampered_frame = panel.frame.with_columns(
        pl.when(late).then(pl.col(c) * 1000.0 + 7.0).otherwise(pl.col(c)).alias(c) for c in NUMERIC_FEATURES
    ).with_columns(
        pl.when(late & (pl.col("ticker") == "T000")).then(None).otherwise(pl.col("rv_21")).alias("rv_21")
    )
    tampered = Panel(tampered_frame, panel.feature_columns, panel.horizon, panel.label_source)
    refit = CrossSectionalNormalizer().fit(tampered.between(start, end), start, end)
    assert refit.fill_values_ == fit.fill_values_
    again = refit.transform(tampered).frame
    # Every row not dated in the tampered part (training and early test rows) is unchanged.
    unchanged = pl.col("date") <= mid
    assert again.filter(unchanged).equals(base.filter(unchanged))
    assert not again.filter(late).equals(base.filter(late))


@pytest.mark.shared_data
def test_real_data_panel_h5(shared_parquet) -> None:
    bars = (
        pl.read_parquet(shared_parquet)
        .unique(["ticker", "date"], keep="first", maintain_order=True)
        .filter(pl.col("date").dt.year() <= 2019)
    )
    targets = build_targets(bars, (H,))
    panel = build_panel(build_daily_features(bars), targets, H)
    assert panel.frame["ticker"].n_unique() == bars["ticker"].n_unique()
    assert panel.frame.height == targets[f"fwd_ret_{H}"].drop_nulls().len() > 0.95 * bars.height
    start, end = dt.date(2015, 1, 1), dt.date(2017, 12, 31)
    norm = CrossSectionalNormalizer().fit(panel.between(start, end), start, end)
    out = norm.transform(panel)
    x = out.feature_matrix()
    assert x.shape == (panel.frame.height, len(panel.feature_columns))
    assert np.isfinite(x).all()
    assert np.abs(out.frame.select(NUMERIC_FEATURES).to_numpy()).max() <= 3.0
    assert np.isfinite(out.labels()).all()
    assert out.frame["date"].max() <= dt.date(2019, 12, 31)
