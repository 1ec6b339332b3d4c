"""The router's governance primary: the gate on the two sources' realized, stored forecasts."""

from __future__ import annotations

import datetime as dt

import polars as pl

from model_code.features import build_targets
from model_code.governance_store import primary_of
from model_code.market_data.calendar import trading_calendar
from model_code.signals.primary import decide_primary, source_tracks
from tests.signal_cases import HORIZON, bars, planted_forecasts

AS_OF = dt.date(2019, 6, 3)


def _inputs(*, swap: bool = False):
    b = bars()
    origins = trading_calendar().session_dates(dt.date(2018, 6, 1), dt.date(2019, 6, 21))
    fc = planted_forecasts(b, origins)
    if swap:  # ts gets the skill, ml the noise
        fc = fc.with_columns(
            source=pl.when(pl.col("source") == "ml").then(pl.lit("ts")).otherwise(pl.lit("ml"))
        )
    return fc, build_targets(b)


def test_tracks_use_only_forecasts_realized_by_as_of_on_common_keys():
    inputs, targets = _inputs()
    tracks = source_tracks(inputs, targets, HORIZON, AS_OF)
    realized = inputs.filter(pl.col("target_date") <= AS_OF)
    assert tracks["origin"].max() == realized["origin"].max() < AS_OF
    assert set(tracks["source"]) == {"ml", "ts"}
    assert tracks.group_by("origin").len()["len"].to_list() == [2] * tracks["origin"].n_unique()
    # Removing every forecast that closes after AS_OF changes nothing: point in time.
    assert tracks.equals(source_tracks(realized, targets, HORIZON, AS_OF))
    ml, ts = (tracks.filter(pl.col("source") == s)["loss"].mean() for s in ("ml", "ts"))
    assert ml < ts  # the planted skill


def test_a_skilled_ml_is_promoted_over_ts_and_kept_while_it_stays_better():
    inputs, targets = _inputs()
    decision, context = decide_primary(inputs, targets, HORIZON, AS_OF)
    assert (decision.action, decision.subject, decision.rival) == ("promote", "ml", "ts"), decision.reason
    assert decision.evidence["dm_p_one_sided"] < 0.05 and decision.evidence["dsr"] >= 0.95
    assert context["origins"] > 200 and context["window_end"] < AS_OF
    assert primary_of(decision.action, decision.subject, decision.rival) == "ml"
    kept, _ = decide_primary(inputs, targets, HORIZON, AS_OF, ml_is_primary=True)
    assert kept.action == "keep" and primary_of(kept.action, kept.subject, kept.rival) == "ml"


def test_a_skill_free_ml_is_refused_and_reverted_when_primary():
    inputs, targets = _inputs(swap=True)
    refused, _ = decide_primary(inputs, targets, HORIZON, AS_OF)
    assert refused.action == "refuse" and "loss not significantly lower" in refused.reason
    assert primary_of(refused.action, refused.subject, refused.rival) == "ts"
    reverted, _ = decide_primary(inputs, targets, HORIZON, AS_OF, ml_is_primary=True)
    assert (reverted.action, reverted.subject, reverted.rival) == ("revert", "ts", "ml")
    assert primary_of(reverted.action, reverted.subject, reverted.rival) == "ts"


def test_without_ml_forecasts_the_router_abstains_and_ts_stays_primary():
    inputs, targets = _inputs()
    decision, context = decide_primary(inputs.filter(pl.col("source") == "ts"), targets, HORIZON, AS_OF)
    assert decision.action == "abstain" and context["origins"] == 0
    assert primary_of(decision.action, decision.subject, decision.rival) == "ts"
