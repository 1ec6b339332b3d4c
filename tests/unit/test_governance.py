"""Governance: promote only on significant uplift, refuse naming each failure, revert, abstain."""

import numpy as np
import pytest

from model_code.governance import Record, first_champion, promotion, reversion

RNG = np.random.default_rng(7)
BASE_LOSSES = 1.0 + RNG.normal(0, 0.1, 200)


def _record(name, losses, *, dsr=0.97, pf=1.2, dd=0.10):
    return Record(name=name, losses=np.asarray(losses), dsr=dsr, profit_factor=pf, max_drawdown=dd)


def _better(shift=0.05, noise=0.02, seed=1):
    rng = np.random.default_rng(seed)
    return BASE_LOSSES - shift + rng.normal(0, noise, BASE_LOSSES.size)


def test_a_challenger_clearing_all_four_criteria_is_promoted_with_its_evidence():
    champion = _record("champ", BASE_LOSSES, pf=1.10, dd=0.10)
    challenger = _record("chall", _better(), dsr=0.97, pf=1.20, dd=0.12)
    decision = promotion(challenger, champion)
    assert decision.action == "promote" and decision.subject == "chall" and decision.rival == "champ"
    assert decision.evidence["dm_stat"] < 0 and decision.evidence["dm_p_one_sided"] < 0.05
    assert decision.evidence["profit_factor_uplift"] == pytest.approx(1.20 / 1.10 - 1)
    assert decision.evidence["drawdown_growth"] == pytest.approx(0.2)


@pytest.mark.parametrize(
    ("changes", "failure"),
    [
        ({"losses": BASE_LOSSES + RNG.normal(0, 0.02, 200)}, "loss not significantly lower"),
        ({"dsr": 0.90}, "DSR 0.900 < 0.95"),
        ({"pf": 1.12}, "profit factor uplift +1.8% < +3%"),
        ({"dd": 0.16}, "drawdown grows +60% > +50%"),
    ],
)
def test_each_failed_criterion_refuses_and_is_named(changes, failure):
    champion = _record("champ", BASE_LOSSES, pf=1.10, dd=0.10)
    args = {"losses": _better(), "dsr": 0.97, "pf": 1.20, "dd": 0.12} | changes
    decision = promotion(
        _record("chall", args["losses"], dsr=args["dsr"], pf=args["pf"], dd=args["dd"]), champion
    )
    assert decision.action == "refuse"
    assert len(decision.reasons) == 1 and decision.reasons[0].startswith(failure.split(" (")[0])
    assert failure in decision.reason


def test_a_worse_challenger_is_refused_even_with_great_strategy_numbers():
    champion = _record("champ", BASE_LOSSES)
    worse = _record("worse", BASE_LOSSES + 0.05 + RNG.normal(0, 0.02, 200), dsr=0.99, pf=3.0, dd=0.01)
    decision = promotion(worse, champion)
    assert decision.action == "refuse" and decision.evidence["dm_stat"] > 0
    assert decision.evidence["dm_p_one_sided"] > 0.5


def test_the_first_champion_faces_the_baseline_and_the_family_abstains_when_none_clears():
    baseline = _record("random_walk", BASE_LOSSES, dsr=0.5, pf=1.0, dd=0.10)
    noisy = _record("lgbm", BASE_LOSSES + RNG.normal(0, 0.02, 200), dsr=0.99, pf=1.5, dd=0.05)
    weak = _record("ridge", _better(), dsr=0.60, pf=1.5, dd=0.05)
    abstain = first_champion([noisy, weak], baseline)
    assert abstain.action == "abstain" and abstain.subject == "none"
    assert (
        "lgbm: loss not significantly lower" in abstain.reason and "ridge: DSR 0.600 < 0.95" in abstain.reason
    )
    good = _record("good", _better(), dsr=0.97, pf=1.5, dd=0.05)
    chosen = first_champion([noisy, weak, good], baseline)
    assert chosen.action == "promote" and chosen.subject == "good"
    assert first_champion([], baseline).reason == "no candidate"


def test_a_champion_that_decays_reverts_and_a_healthy_one_is_kept():
    previous = _record("old", BASE_LOSSES)
    decayed = _record("new", BASE_LOSSES + 0.05 + RNG.normal(0, 0.02, 200))
    revert = reversion(decayed, previous)
    assert revert.action == "revert" and revert.subject == "old" and revert.rival == "new"
    assert "fell significantly below old" in revert.reason
    healthy = _record("new", _better())
    keep = reversion(healthy, previous)
    assert keep.action == "keep" and keep.subject == "new"


def test_too_few_origins_is_no_evidence_and_never_promotes():
    champion = _record("champ", BASE_LOSSES[:2])
    decision = promotion(_record("chall", _better()[:2]), champion)
    assert decision.action == "refuse" and "p 1.000" in decision.reason
