"""The router: every path (ts, ml, llm, none) and flag combination, each with its stored reason."""

from __future__ import annotations

import datetime as dt
import itertools

import polars as pl
import pytest

from model_code.costs import TradingCosts
from model_code.forecasting.base import Z80
from model_code.signals.calibration import Calibration
from model_code.signals.router import SIGNAL_SCHEMA, RouterSettings, route

AS_OF = dt.date(2019, 3, 1)
# conf = sigmoid(z): z = |yhat| / sd; sd = 0.01 below, so yhat 0.004 -> z 0.4 -> conf 0.599
CAL = Calibration(a=0.0, b=1.0, n=1000, hit_rate=0.52, as_of=AS_OF)


def _fc(rows: dict[str, float], model: str, sd: float = 0.01) -> pl.DataFrame:
    half = Z80 * sd
    return pl.DataFrame(
        {
            "ticker": list(rows),
            "model": [model] * len(rows),
            "yhat": list(rows.values()),
            "lower_80": [y - half for y in rows.values()],
            "upper_80": [y + half for y in rows.values()],
        }
    )


def _one(frame: pl.DataFrame, ticker: str) -> dict:
    return frame.filter(pl.col("ticker") == ticker).row(0, named=True)


def test_ts_first_when_confident_and_edge_covers_costs():
    out = route(
        AS_OF,
        ["AAA"],
        {"ts": _fc({"AAA": 0.0041}, "ensemble"), "ml": _fc({"AAA": -0.009}, "lgbm")},
        {"ts": CAL, "ml": CAL},
        RouterSettings(),
    )
    assert out.schema == pl.Schema(SIGNAL_SCHEMA)
    row = _one(out, "AAA")
    assert (row["action"], row["source"], row["model_id"]) == ("BUY", "ts", "ensemble")
    assert row["reason"] == "ts ensemble: conf 0.60 >= 0.55, edge 41 bp > cost 20 bp"
    assert row["expected_return"] == pytest.approx(0.0041 - TradingCosts().round_trip_log)
    assert row["path"] == "ts: BUY"


def test_ml_second_when_ts_is_not_confident():
    out = route(
        AS_OF,
        ["AAA"],
        {"ts": _fc({"AAA": 0.001}, "ensemble"), "ml": _fc({"AAA": -0.009}, "lgbm")},
        {"ts": CAL, "ml": CAL},
        RouterSettings(),
    )
    row = _one(out, "AAA")
    assert (row["action"], row["source"]) == ("SELL", "ml")
    assert row["path"] == "ts: conf 0.52 < 0.55 (below threshold) -> ml: SELL"
    assert row["expected_return"] == pytest.approx(-(0.009 - TradingCosts().round_trip_log))
    assert row["reason"].startswith("ml champion: conf 0.71 >= 0.55, edge 90 bp > cost 20 bp")


def test_a_confident_forecast_whose_edge_does_not_cover_costs_holds():
    tight = _fc({"AAA": 0.0015}, "ensemble", sd=0.001)  # z = 1.5, conf 0.82, edge 15 bp < 20 bp
    out = route(AS_OF, ["AAA"], {"ts": tight}, {"ts": CAL}, RouterSettings(enabled={"ts": True}))
    row = _one(out, "AAA")
    assert (row["action"], row["source"], row["expected_return"]) == ("HOLD", "none", 0.0)
    assert row["reason"] == "HOLD: no source gave a confident view (ts: edge 15 bp <= cost 20 bp; llm: off)"


def test_without_calibration_history_confidence_is_one_half_and_the_signal_holds():
    out = route(AS_OF, ["AAA"], {"ts": _fc({"AAA": 0.05}, "ensemble")}, {"ts": None}, RouterSettings())
    row = _one(out, "AAA")
    assert row["action"] == "HOLD" and row["confidence"] == 0.5
    assert "ts: conf 0.50 < 0.55 (no calibration yet)" in row["reason"] and "ml: no forecast" in row["reason"]


def _llm_answer(action="BUY", stated=0.9):
    asked: list[tuple[str, dict]] = []

    def ask(as_of, ticker, inputs):
        assert as_of == AS_OF
        asked.append((ticker, dict(inputs)))
        return (action, stated, "momentum and forecasts agree", "fake:1b")

    return ask, asked


def test_llm_last_for_undecided_tickers_ranked_by_edge_and_capped():
    ask, asked = _llm_answer()
    fc = {"ts": _fc({"A": 0.002, "B": 0.003, "C": 0.001, "D": 0.0005}, "ensemble", sd=0.1)}
    settings = RouterSettings(enabled={"ts": True, "ml": True, "llm": True}, llm_max_tickers=2)
    out = route(AS_OF, ["A", "B", "C", "D", "E"], fc, {"ts": CAL, "llm": CAL}, settings, llm=ask)
    assert [t for t, _ in asked] == ["B", "A"]  # the two largest edges only
    assert asked[0][1] == {"ts_yhat": 0.003}
    b = _one(out, "B")
    assert (b["action"], b["source"], b["model_id"], b["expected_return"]) == ("BUY", "llm", "fake:1b", None)
    assert b["reason"].startswith("llm fake:1b: BUY, conf 0.71 >= 0.55: momentum")
    assert b["path"] == "ts: conf 0.51 < 0.55 (below threshold) -> ml: no forecast -> llm: BUY"
    c = _one(out, "C")
    assert c["source"] == "none" and "llm: not asked (only the 2 largest edges are)" in c["reason"]
    e = _one(out, "E")
    assert e["source"] == "none" and "ts: no forecast" in e["reason"]


def test_llm_down_or_uncalibrated_degrades_to_hold_with_the_reason():
    settings = RouterSettings(enabled={"ts": True, "llm": True})
    fc = {"ts": _fc({"A": 0.001}, "ensemble")}
    down = route(AS_OF, ["A"], fc, {"ts": CAL}, settings, llm=lambda d, t, i: None)
    assert "llm: no valid answer (every model failed or the budget was spent)" in _one(down, "A")["reason"]
    unavailable = route(AS_OF, ["A"], fc, {"ts": CAL}, settings, llm=None)
    assert "llm: unavailable" in _one(unavailable, "A")["reason"]
    ask, _ = _llm_answer()
    fresh = route(AS_OF, ["A"], fc, {"ts": CAL, "llm": None}, settings, llm=ask)
    assert "llm: BUY at conf 0.50 < 0.55 (no calibration yet)" in _one(fresh, "A")["reason"]
    hold, _ = _llm_answer(action="HOLD")
    said_hold = route(AS_OF, ["A"], fc, {"ts": CAL, "llm": CAL}, settings, llm=hold)
    assert "llm: HOLD (fake:1b)" in _one(said_hold, "A")["reason"]


def test_primary_ml_asks_ml_first_and_governance_defaults_to_ts():
    fc = {"ts": _fc({"A": 0.006}, "ensemble"), "ml": _fc({"A": -0.007}, "lgbm")}
    cals = {"ts": CAL, "ml": CAL}
    assert _one(route(AS_OF, ["A"], fc, cals, RouterSettings(primary="ml")), "A")["source"] == "ml"
    assert _one(route(AS_OF, ["A"], fc, cals, RouterSettings(primary="governance")), "A")["source"] == "ts"
    governed = route(AS_OF, ["A"], fc, cals, RouterSettings(primary="governance"), governance_primary="ml")
    assert _one(governed, "A")["source"] == "ml"


@pytest.mark.parametrize(
    ("ts", "ml", "llm", "primary"),
    list(itertools.product([True, False], [True, False], [True, False], ["ts", "ml"])),
)
def test_every_flag_combination_routes_to_the_first_enabled_source_with_a_view(ts, ml, llm, primary):
    ask, asked = _llm_answer()
    settings = RouterSettings(enabled={"ts": ts, "ml": ml, "llm": llm}, primary=primary)
    fc = {"ts": _fc({"A": 0.006}, "ensemble"), "ml": _fc({"A": -0.007}, "lgbm")}
    row = _one(route(AS_OF, ["A"], fc, {"ts": CAL, "ml": CAL, "llm": CAL}, settings, llm=ask), "A")
    statistical = [s for s in (["ml", "ts"] if primary == "ml" else ["ts", "ml"]) if {"ts": ts, "ml": ml}[s]]
    expected = statistical[0] if statistical else ("llm" if llm else "none")
    assert row["source"] == expected
    assert bool(asked) == (expected == "llm")
    want_action = {"ts": "BUY", "ml": "SELL", "llm": "BUY", "none": "HOLD"}[expected]
    assert row["action"] == want_action
    if expected == "none":
        assert row["reason"] == "HOLD: no source gave a confident view (llm: off)"
    else:
        assert row["reason"].startswith(
            {"ts": "ts ensemble", "ml": "ml champion", "llm": "llm fake:1b"}[expected]
        )


def test_unknown_sources_and_bad_thresholds_are_refused():
    with pytest.raises(ValueError, match="unknown signal source"):
        RouterSettings(enabled={"tss": True})
    with pytest.raises(ValueError, match="min_confidence"):
        RouterSettings(min_confidence=0.4)
