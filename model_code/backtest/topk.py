"""Qlib's ``TopkDropoutStrategy`` rule on a date x ticker score panel, as target weights.

Each session, with ``last`` the names held after the previous session (ranked by today's score,
names without a score last):

* ``today``: the best ``n_drop + topk - len(last)`` scored names not held;
* ``comb``: ``last`` and ``today`` ranked together; ``sell``: the held names among the
  ``n_drop`` worst of ``comb``;
* ``buy``: the first ``len(sell) + topk - len(last)`` of ``today``.

So at most ``n_drop`` names leave a full book a day, and only for better-ranked ones (Qlib's
``method_sell="bottom"``, ``method_buy="top"``, ``hold_thresh=1``). The held names are weighted
equally. A name can be traded only on a session where it has a bar (``tradable``): a held name
without one stays held (its weight is NaN, which the backtester reads as "hold"), and is neither
sold nor counted among the candidates. Ties in score go to the lower column index.

Scores at row ``t`` must be known at the close of ``t`` (the decision's close); the backtester
fills the weights at the next bar.
"""

from __future__ import annotations

import numpy as np


def _ranked(idx: np.ndarray, score: np.ndarray) -> np.ndarray:
    """``idx`` by descending score, NaN scores last, ties by index."""
    s = score[idx]
    key = np.where(np.isfinite(s), -s, np.inf)
    return idx[np.lexsort((idx, key))]


def topk_dropout_holdings(
    scores: np.ndarray, *, topk: int = 50, n_drop: int = 5, tradable: np.ndarray | None = None
) -> np.ndarray:
    """Boolean ``(n_days, n_tickers)``: the names held after each session's decision."""
    scores = np.asarray(scores, dtype=float)
    if scores.ndim != 2:
        raise ValueError(f"scores must be a 2-D date x ticker array, got shape {scores.shape}")
    if topk < 1 or not 0 <= n_drop <= topk:
        raise ValueError(f"need topk >= 1 and 0 <= n_drop <= topk, got topk={topk}, n_drop={n_drop}")
    can = np.ones(scores.shape, dtype=bool) if tradable is None else np.asarray(tradable, dtype=bool)
    if can.shape != scores.shape:
        raise ValueError(f"tradable has shape {can.shape}, scores {scores.shape}")
    n, m = scores.shape
    held = np.zeros((n, m), dtype=bool)
    current = np.zeros(m, dtype=bool)
    cols = np.arange(m)
    for t in range(n):
        s = np.where(can[t], scores[t], np.nan)
        last = _ranked(cols[current], s)
        stuck = last[~can[t, last]]  # held without a bar today: cannot be sold
        free = last[can[t, last]]
        pool = cols[~current & can[t] & np.isfinite(s)]
        today = _ranked(pool, s)[: max(n_drop + topk - last.size, 0)]
        comb = _ranked(np.concatenate([free, today]), s)
        worst = set(comb[comb.size - n_drop :].tolist()) if n_drop else set()
        sell = np.array([i for i in free if i in worst], dtype=int)
        buy = today[: max(sell.size + topk - last.size, 0)]
        current = np.zeros(m, dtype=bool)
        current[np.setdiff1d(free, sell)] = True
        current[stuck] = True
        current[buy] = True
        held[t] = current
    return held


def topk_dropout_weights(
    scores: np.ndarray, *, topk: int = 50, n_drop: int = 5, tradable: np.ndarray | None = None
) -> np.ndarray:
    """Target weights: ``1 / len(held)`` on each held name, 0 elsewhere, NaN (hold) on a held or
    untraded name without a bar that session."""
    scores = np.asarray(scores, dtype=float)
    can = np.ones(scores.shape, dtype=bool) if tradable is None else np.asarray(tradable, dtype=bool)
    held = topk_dropout_holdings(scores, topk=topk, n_drop=n_drop, tradable=can)
    count = held.sum(axis=1, keepdims=True)
    w = np.where(held, 1.0 / np.maximum(count, 1), 0.0)
    return np.where(can, w, np.nan)
