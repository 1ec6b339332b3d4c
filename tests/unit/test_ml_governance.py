"""Governance of the ML registry end to end: promote, refuse, revert, keep and abstain, each
decision in ``models.decisions`` of a real DuckDB file."""

from __future__ import annotations

import datetime as dt
import json

import polars as pl
import pytest

from model_code.features import build_daily_features, build_targets
from model_code.features.synthetic import synthetic_bars
from model_code.governance import Decision
from model_code.governance_store import (
    LoggedDecision,
    latest_decisions,
    log_decisions,
    no_champion_reason,
    promoted_over,
)
from model_code.ml.lifecycle import known_at, register_fits, revert_check, train_horizons
from model_code.ml.registry import ModelRegistry
from tests.ml_cases import with_skill

FAST = {"n_jobs": 1, "n_estimators": 40, "min_child_samples": 20}
H = 5
NOW = dt.datetime(2024, 6, 1, 12, 0)
FAMILY = "lgbm_regressor"


@pytest.fixture(scope="module")
def data():
    """700 sessions of 30 random-walk tickers; ``alpha`` foretells the 5-session return up to
    session 330 and after session 520, ``beta`` in between (a regime the world leaves)."""
    bars = synthetic_bars(30, 700, seed=11)
    features, targets = build_daily_features(bars), build_targets(bars)
    dates = features["date"].unique().sort().to_list()
    t1, t2 = dates[330], dates[520]
    alpha_a = with_skill(features, targets, leaks={"vr_5_126": "fwd_ret_5"}, between=(dates[0], t1), seed=1)
    alpha_c = with_skill(features, targets, leaks={"vr_5_126": "fwd_ret_5"}, between=(t2, dates[-1]), seed=2)
    beta = with_skill(features, targets, leaks={"vr_10_126": "fwd_ret_5"}, between=(t1, t2), seed=3)
    alpha = alpha_a.with_columns(
        pl.when(pl.col("date") > t2).then(alpha_c["vr_5_126"]).otherwise(pl.col("vr_5_126")).alias("vr_5_126")
    ).with_columns(beta["vr_10_126"])
    return {"features": features, "skill": alpha, "targets": targets, "dates": dates, "t1": t1, "t2": t2}


def _fit(features, targets, until, *, params=None, train_years=0.75, valid_months=3):
    f, t = known_at(features, targets, until, [H])
    return train_horizons(
        f,
        t,
        [H],
        train_years=train_years,
        valid_months=valid_months,
        params=params or FAST,
        importance_repeats=1,
    ), (f, t)


@pytest.fixture
def registry(warehouse, tmp_path) -> ModelRegistry:
    return ModelRegistry(warehouse, tmp_path / "models")


def _decisions(registry) -> pl.DataFrame:
    return registry.warehouse.query("SELECT * FROM models.decisions ORDER BY decided_at, action")


def test_no_skill_abstains_and_says_why(data, registry):
    fits, recent = _fit(data["features"], data["targets"], data["t1"])
    (reg,) = register_fits(
        registry.warehouse, fits, expiry_days=None, registry=registry, now=NOW, recent=recent
    )
    assert reg.status == "challenger" and reg.decision.action == "abstain"
    assert registry.champion(FAMILY, H) is None
    row = _decisions(registry).row(0, named=True)
    assert (row["action"], row["subject"], row["rival"]) == ("abstain", reg.model_id, "random_walk")
    assert "loss not significantly lower" in row["reason"] or "DSR" in row["reason"]
    evidence = json.loads(row["evidence"])
    assert evidence["random_walk_mean_loss"] == 1.0 and evidence["dates"] > 50
    why = no_champion_reason(registry.warehouse, FAMILY, H)
    assert why.startswith("no champion (governance abstain") and reg.model_id in why


def test_skill_is_promoted_a_skill_free_rival_refused_and_the_log_is_idempotent(data, registry):
    fits, recent = _fit(data["skill"], data["targets"], data["t1"])
    (first,) = register_fits(
        registry.warehouse, fits, expiry_days=None, registry=registry, now=NOW, recent=recent
    )
    assert first.status == "champion" and first.decision.action == "promote", first.reason
    ev = first.decision.evidence
    assert ev["dm_p_one_sided"] < 0.05 and ev["dsr"] >= 0.95 and ev["profit_factor_uplift"] >= 0.03
    assert registry.champion(FAMILY, H).model_id == first.model_id
    assert promoted_over(registry.warehouse, FAMILY, H, first.model_id) == "random_walk"

    # Another configuration on the features without the skill: refused against the champion's
    # stored out-of-fold record, on their common dates; the champion stays.
    rival, recent = _fit(data["features"], data["targets"], data["t1"], params={**FAST, "num_leaves": 7})
    later = NOW + dt.timedelta(days=7)
    (second,) = register_fits(
        registry.warehouse, rival, expiry_days=None, registry=registry, now=later, recent=recent
    )
    assert second.status == "challenger" and second.decision.action == "refuse"
    assert second.decision.rival == first.model_id and "loss not significantly lower" in second.reason
    assert registry.champion(FAMILY, H).model_id == first.model_id

    rows = _decisions(registry)
    assert rows["action"].to_list() == ["promote", "refuse"]
    again = [LoggedDecision(r.decision, FAMILY, H, t) for r, t in ((first, NOW), (second, later))]
    log_decisions(registry.warehouse, again)  # the same decisions again: rows rewritten, not added
    assert registry.warehouse.count("models.decisions") == 2
    latest = latest_decisions(registry.warehouse, FAMILY, H, limit=1)
    assert latest["action"].to_list() == ["refuse"]


def test_a_decayed_champion_reverts_to_the_one_it_replaced(data, registry):
    """A (alpha) is promoted; B, which learned the beta regime, was promoted over A; once the
    world is back to alpha, the weekly training finds B significantly worse than A since its
    promotion and reverts to A, then gates its own new model against A."""
    skill, targets, t2 = data["skill"], data["targets"], data["t2"]
    fits_a, recent = _fit(skill, targets, data["t1"])
    (a,) = register_fits(
        registry.warehouse, fits_a, expiry_days=None, registry=registry, now=NOW, recent=recent
    )
    assert a.status == "champion"
    fits_b, _ = _fit(skill, targets, t2, params={**FAST, "num_leaves": 7}, train_years=0.5, valid_months=2)
    b_at = NOW + dt.timedelta(days=30)
    # B's promotion over A as an earlier run logged it (its own gate is tested above).
    (b,) = register_fits(registry.warehouse, fits_b, expiry_days=None, registry=registry, now=b_at)
    registry.promote(b.model_id, as_of=b_at)
    log_decisions(
        registry.warehouse,
        [LoggedDecision(Decision("promote", b.model_id, a.model_id, ("by the test",)), FAMILY, H, b_at)],
    )
    assert registry.champion(FAMILY, H).model_id == b.model_id

    # Since B's data_end only alpha foretells returns: B is significantly worse than A.
    b_rec, a_rec = registry.record(b.model_id), registry.record(a.model_id)
    kept = revert_check(a_rec, b_rec, skill, targets, artifact_root=registry.artifact_root)
    assert kept is not None and kept[0].action == "keep"  # A, judged against B, is not worse
    end = data["dates"][-1]
    fits_c, recent = _fit(skill, targets, end)
    c_at = NOW + dt.timedelta(days=60)
    (c,) = register_fits(
        registry.warehouse, fits_c, expiry_days=None, registry=registry, now=c_at, recent=recent
    )
    actions = [d.decision.action for d in c.decisions]
    assert actions[0] == "revert", c.decisions[0].decision.reason
    revert = c.decisions[0]
    assert (revert.decision.subject, revert.decision.rival) == (a.model_id, b.model_id)
    assert revert.decision.evidence["dm_p_one_sided"] < 0.05 and revert.context["dates"] > 50
    assert revert.context["since"] == b_rec.cv_metrics["data_end"]
    status = dict(registry.warehouse.execute("SELECT model_id, status FROM models.registry"))
    assert status[b.model_id] == "retired"
    # C retrains A's configuration: a refresh, gated against the random walk.
    assert c.decision.rival == "random_walk" and "retrain of champion" in c.reason
    assert status[a.model_id] == ("retired" if c.status == "champion" else "champion")
    logged = _decisions(registry).filter(pl.col("decided_at") == c_at)
    assert sorted(logged["action"].to_list()) == sorted(actions)
