"""Purged walk-forward CV (label-end purge, embargo, chronology) and the trial log."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import polars as pl
import pytest
from hypothesis import assume, event, given, settings
from hypothesis import strategies as st
from skfolio.model_selection import WalkForward

from model_code.ml.cv import PurgedWalkForward, TrialLog, purged_train_mask
from model_code.ml.dataset import LABEL, LABEL_END, Panel, build_panel

START = dt.date(2018, 1, 1)


def toy_panel(
    n_dates: int, n_tickers: int, horizon: int, *, gap: float = 0.0, seed: int = 0, require_label: bool = True
) -> Panel:
    """Tickers on a subset of ``n_dates`` consecutive days; label_end = the ticker's row t+h."""
    rng = np.random.default_rng(seed)
    sessions = [START + dt.timedelta(days=i) for i in range(n_dates)]
    rows = []
    for k in range(n_tickers):
        keep = rng.random(n_dates) >= gap
        keep[0] = True
        rows += [{"ticker": f"T{k}", "date": d} for d, ok in zip(sessions, keep, strict=True) if ok]
    keys = pl.DataFrame(rows, schema={"ticker": pl.String, "date": pl.Date})
    feats = keys.with_columns(pl.lit(1.0).alias("f"))
    targets = keys.with_columns(
        pl.col("date").shift(-horizon).over("ticker").alias(f"target_date_{horizon}"),
        pl.int_range(pl.len()).shift(-horizon).over("ticker").cast(pl.Float64).alias(f"fwd_ret_{horizon}"),
    )
    return build_panel(feats, targets, horizon, require_label=require_label)


def check_folds(panel: Panel, cv: PurgedWalkForward, embargo: int) -> int:
    sessions = panel.dates()
    date = panel.frame["date"].to_numpy().astype("datetime64[D]")
    end = panel.frame[LABEL_END].to_numpy().astype("datetime64[D]")
    pos = np.searchsorted(sessions, date)
    folds = list(cv.folds(panel))
    assert len(folds) == cv.get_n_splits(panel) <= len(cv.blocks(len(sessions), panel.horizon))
    for i, f in enumerate(folds):
        t0, t1 = np.datetime64(f.test_start), np.datetime64(f.test_end)
        lo, hi = np.searchsorted(sessions, [t0, t1])
        tr, te = f.train_idx, f.test_idx
        assert len(tr) > 0 and len(te) > 0 and not set(tr) & set(te)
        # Test rows are exactly the rows dated in the test block.
        assert np.array_equal(te, np.flatnonzero((date >= t0) & (date <= t1)))
        # Purge: no training label window [date, label_end] overlaps [test_start, test_end].
        assert not np.any((date[tr] <= t1) & (end[tr] >= t0))
        assert np.all(end[tr] < t0) and np.all(date[tr] < t0)
        # Embargo: at least `embargo` sessions lie strictly between each label end and the test start.
        between = lo - np.searchsorted(sessions, end[tr], side="right")
        assert between.min() >= embargo
        # ...and no training row sits in the `embargo` sessions after the test block.
        assert not np.any((pos[tr] > hi) & (pos[tr] <= hi + embargo))
        assert not np.isnan(panel.frame[LABEL].to_numpy()[tr]).any()
        if not cv.expanding:  # rolling: inside the train_size sessions just before the gap
            assert pos[tr].min() >= lo - panel.horizon - embargo - (cv.train_size or 0)
        if i:  # chronological, non-overlapping, contiguous test blocks
            prev = folds[i - 1]
            assert prev.test_end < f.test_start
            if prev.fold + 1 == f.fold:
                assert np.searchsorted(sessions, np.datetime64(prev.test_end)) + 1 == lo
            if cv.expanding:
                assert set(prev.train_idx) <= set(tr)
    return len(folds)


@settings(max_examples=80, deadline=None)
@given(
    n_dates=st.integers(20, 260),
    n_tickers=st.integers(1, 4),
    horizon=st.integers(1, 12),
    gap=st.sampled_from([0.0, 0.1, 0.3]),
    embargo=st.integers(1, 5),
    expanding=st.booleans(),
    n_splits=st.one_of(st.none(), st.integers(1, 6)),
    train_size=st.integers(3, 80),
    test_size=st.integers(1, 40),
    seed=st.integers(0, 1000),
)
def test_purged_walk_forward_property(
    n_dates, n_tickers, horizon, gap, embargo, expanding, n_splits, train_size, test_size, seed
) -> None:
    panel = toy_panel(n_dates, n_tickers, horizon, gap=gap, seed=seed)
    assume(panel.frame.height > 0)
    cv = PurgedWalkForward(
        n_splits,
        train_size=None if expanding and n_splits else train_size,
        test_size=None if n_splits else test_size,
        expanding=expanding,
        embargo=embargo,
    )
    try:
        cv.get_n_splits(panel)
    except ValueError:
        assume(False)
    event(f"has folds: {check_folds(panel, cv, embargo) > 0}")


@pytest.mark.parametrize("expanding", [True, False])
def test_layout_matches_skfolio_walk_forward_without_gaps(expanding) -> None:
    h, embargo, train, test, k = 5, 2, 30, 10, 6
    n = train + h + embargo + k * test
    panel = toy_panel(n + h, 3, h)  # the last h dates have no label and are dropped
    assert len(panel.dates()) == n
    ours = list(
        PurgedWalkForward(train_size=train, test_size=test, expanding=expanding, embargo=embargo).folds(panel)
    )
    ref = list(
        WalkForward(test_size=test, train_size=train, expand_train=expanding, purged_size=h + embargo).split(
            np.zeros((n, 1))
        )
    )
    assert len(ours) == len(ref) == k
    pos = np.searchsorted(panel.dates(), panel.frame["date"].to_numpy().astype("datetime64[D]"))
    for f, (r_train, r_test) in zip(ours, ref, strict=True):
        assert np.array_equal(np.unique(pos[f.test_idx]), r_test)
        assert np.array_equal(np.unique(pos[f.train_idx]), r_train)


def test_label_end_purges_gapped_ticker_that_a_fixed_count_misses() -> None:
    d = [START + dt.timedelta(days=i) for i in range(40)]
    # T0 trades every day; T1 skips days 20..29, so its 2-bar label from day 19 ends on day 31.
    t1_days = [x for i, x in enumerate(d) if not 20 <= i < 30]
    keys = pl.DataFrame({"ticker": ["T0"] * 40 + ["T1"] * len(t1_days), "date": d + t1_days})
    targets = keys.with_columns(
        pl.col("date").shift(-2).over("ticker").alias("target_date_2"), pl.lit(0.1).alias("fwd_ret_2")
    )
    panel = build_panel(keys.with_columns(pl.lit(1.0).alias("f")), targets, 2)
    row = panel.frame.with_row_index().filter((pl.col("ticker") == "T1") & (pl.col("date") == d[19]))
    assert row[LABEL_END].item() == d[31]
    folds = list(PurgedWalkForward(train_size=20, test_size=5, purge=0, embargo=1).folds(panel))
    f = next(f for f in folds if f.test_start == d[28])  # 38 labelled dates: tests 23-27, 28-32, 33-37
    assert f.train_end == d[26]
    assert row["index"].item() not in set(f.train_idx)  # purged by label_end alone (purge=0)
    t0 = panel.frame.with_row_index().filter((pl.col("ticker") == "T0") & (pl.col("date") == d[19]))
    assert t0["index"].item() in set(f.train_idx)  # same date, label ends on day 21: kept


def test_purged_train_mask_embargoes_both_sides() -> None:
    date_pos = np.arange(20)
    end_pos = date_pos + 2
    keep = purged_train_mask(date_pos, end_pos, test_lo=8, test_hi=11, embargo=2)
    # Before: label end must be < 8 - 2 -> date <= 3. After: date must be > 11 + 2 -> >= 14.
    assert np.flatnonzero(keep).tolist() == [0, 1, 2, 3, 14, 15, 16, 17, 18, 19]


def test_unlabelled_rows_never_train_but_are_tested() -> None:
    panel = toy_panel(120, 3, 4, require_label=False)
    assert panel.frame[LABEL].null_count() > 0
    folds = list(PurgedWalkForward(3, embargo=1).folds(panel))
    labels = panel.frame[LABEL].to_numpy()
    assert all(not np.isnan(labels[f.train_idx]).any() for f in folds)
    assert np.isnan(labels[folds[-1].test_idx]).any()


def test_n_splits_derivation_and_validation() -> None:
    panel = toy_panel(100, 2, 3)  # 97 labelled dates
    cv = PurgedWalkForward(4, embargo=1)
    folds = list(cv.folds(panel))
    assert len(folds) == 4 and folds[-1].test_end == panel.frame["date"].max()
    assert len({len(np.unique(panel.frame["date"].to_numpy()[f.test_idx])) for f in folds}) == 1
    assert cv.blocks(97, 3)[0][1] == cv.blocks(97, 3)[0][2] - 3 - 1 - 1
    with pytest.raises(ValueError, match="n_splits, or both"):
        PurgedWalkForward(train_size=10)
    with pytest.raises(ValueError, match="embargo"):
        PurgedWalkForward(3, embargo=0)
    with pytest.raises(ValueError, match="rolling"):
        PurgedWalkForward(3, expanding=False)
    with pytest.raises(ValueError, match=">= 1"):
        PurgedWalkForward(0)
    with pytest.raises(ValueError, match="cannot hold"):
        PurgedWalkForward(train_size=90, test_size=10).get_n_splits(panel)
    split = list(cv.split(panel))
    assert all(np.array_equal(a, f.train_idx) for (a, _), f in zip(split, folds, strict=True))


def test_trial_log_is_append_only_and_counts_configurations() -> None:
    log = TrialLog()
    params = {"lr": 0.1, "depth": 3}
    window = (dt.date(2019, 1, 2), dt.date(2019, 3, 29))
    first = log.record("lgbm", params, {"ic": 0.03, "rank_ic": 0.04}, fold=0, window=window)
    params["lr"] = 0.5  # mutating the caller's dict must not change the record
    log.record("lgbm", {"depth": 3, "lr": 0.1}, {"ic": 0.01}, fold=1, window=window)
    log.record("lgbm", params, 0.02, fold=0)
    log.record("ridge", {}, np.float32(0.01))
    assert len(log) == 4 and log.n_trials == 3
    assert json.loads(first.params) == {"depth": 3, "lr": 0.1}
    with pytest.raises(TypeError):
        first.scores["ic"] = 1.0  # type: ignore[index]
    with pytest.raises(AttributeError):
        log.trials[0].model = "x"  # type: ignore[misc]
    frame = log.to_frame()
    assert frame.height == 4 and frame["trial"].to_list() == [0, 1, 2, 3]
    assert {
        "model",
        "params",
        "fold",
        "window_start",
        "window_end",
        "score_ic",
        "score_rank_ic",
        "score_score",
    } <= set(frame.columns)
    assert frame["score_rank_ic"].to_list() == [0.04, None, None, None]
    assert frame["window_start"][0] == window[0] and frame["fold"][3] is None
    assert TrialLog().to_frame().height == 0
