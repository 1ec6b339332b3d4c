"""The backtest benchmark's vectorbt inputs mean what our engine's do (the timing is not tested)."""

from pathlib import Path

import numpy as np

from benchmarks.backtest import run_vectorbt, vectorbt_inputs
from model_code.execution import ExecutionConfig

NAN = np.nan


def _panels() -> dict[str, np.ndarray]:
    close = np.array(
        [
            [10.0, 20.0, NAN],
            [11.0, 21.0, NAN],
            [12.0, NAN, 30.0],  # B has no bar; C lists
            [13.0, 22.0, 31.0],  # B's last bar: delisted after it
            [14.0, NAN, 32.0],
        ]
    )
    open_ = np.where(np.isfinite(close), close - 0.5, NAN)
    open_[1, 0] = NAN  # no open: fills at the close
    volume = np.where(np.isfinite(close), 1000.0, NAN)
    has = np.isfinite(close)
    weights = np.where(has, 1.0, 0.0) / has.sum(axis=1, keepdims=True)
    return {"weights": weights, "open_": open_, "close": close, "volume": volume}


def test_orders_decided_at_the_close_fill_on_the_next_bar_at_the_open_else_the_close():
    p = _panels()
    v = vectorbt_inputs(p, ExecutionConfig())
    assert np.isnan(v["size"][0]).all()  # nothing decided before the first close
    assert v["size"][1, 0] == p["weights"][0, 0] and v["price"][1, 0] == 11.0  # close: no open
    assert v["size"][2, 0] == p["weights"][1, 0] and v["price"][2, 0] == 11.5
    assert np.isnan(v["size"][2, 1])  # no bar for B on row 2: no order, as ours fills nothing
    assert np.isnan(v["size"][2, 2])  # C's first bar: nothing was decided for it the close before
    assert v["fees"] == 10e-4 and v["init_cash"] > 0


def test_the_cap_is_ten_percent_of_the_adv_known_at_the_decision_and_delistings_close_at_the_last_close():
    p = _panels()
    v = vectorbt_inputs(p, ExecutionConfig())
    # row 3 fills what close 2 decided: ADV over the bars through row 2 (A: 10, 11, 12 x 1000)
    adv_shares = np.mean([10_000.0, 11_000.0, 12_000.0]) / 12.0
    assert v["max_size"][3, 0] == 0.1 * adv_shares
    # B's last bar is row 3: on row 4 it is sold at that close, without a cap
    assert v["size"][4, 1] == 0.0 and v["price"][4, 1] == 22.0 and v["max_size"][4, 1] == np.inf
    assert np.array_equal(v["close"][4], [14.0, 22.0, 32.0])  # marks carried forward
    free = vectorbt_inputs(p, ExecutionConfig(participation_cap=None))
    assert np.isinf(free["max_size"][np.isfinite(free["size"])]).all()


def test_without_the_bench_venv_vectorbt_is_reported_as_not_run(tmp_path):
    out = run_vectorbt(vectorbt_inputs(_panels(), ExecutionConfig()), 1, Path(__file__).parents[2] / "nope")
    assert "make bench-venv" in out["error"]
