"""Ranking properties for a lead: order, top-k, validation of preferences and properties."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ml_core.errors import InvalidBatchError, InvalidLeadError, SpecError
from ml_core.lifecycle import train_and_register
from ml_core.matching import ScoredPair, rank_properties, scores_pairs
from ml_core.pool import ModelPool
from ml_core.scoring import score_batch
from ml_core.spec import load_spec
from tests.stores import registry_at
from tests.unit.pairs import REPO_MODELS, listing, preferences, rules_served


@pytest.fixture
def models(tmp_path: Path) -> list:
    return rules_served(tmp_path)


def lead(**prefs: object) -> dict:
    return {"id": "lead-1", "preferences": preferences(**prefs), "timeline_urgency": 0.9}


LISTINGS = [
    listing("far", latitude=40.4168 + 0.3),
    listing("fits"),
    listing("over-budget", price=700_000),
    listing("no-parking", amenities=["balcony"]),
    listing("house", property_type="house"),
]


def test_properties_are_ranked_best_first_by_the_ordering_model(models: list) -> None:
    result = rank_properties(models, lead(), LISTINGS, top_k=None)
    ranked = [m["property_id"] for m in result["matches"]]
    assert ranked[0] == "fits" and set(ranked[-2:]) == {"far", "over-budget"}
    scores = [m["scores"]["property_matcher"]["score"] for m in result["matches"]]
    assert scores == sorted(scores, reverse=True)
    assert [m["rank"] for m in result["matches"]] == [1, 2, 3, 4, 5]
    assert result["properties"] == {"received": 5, "scored": 5}
    assert result["errors"] == []
    for model in ("property_matcher", "property_interest_predictor", "viewing_probability_predictor"):
        assert result["models"][model]["served_by"] == "fallback"
        assert "no champion" in result["models"][model]["fallback_reason"]


def test_top_k_cuts_the_list_and_order_by_picks_the_model(models: list) -> None:
    by_match = rank_properties(models, lead(), LISTINGS, top_k=2)
    assert len(by_match["matches"]) == 2
    by_viewing = rank_properties(models, lead(), LISTINGS, top_k=None, order_by="viewing_probability_predictor")
    assert by_viewing["order_by"] == "viewing_probability_predictor"
    viewing = [m["scores"]["viewing_probability_predictor"]["probability"] for m in by_viewing["matches"]]
    assert viewing == sorted(viewing, reverse=True)


def test_equal_scores_keep_input_order(models: list) -> None:
    same = [listing(f"twin-{i}") for i in range(4)]
    ranked = rank_properties(models, lead(), same, top_k=None)["matches"]
    assert [m["property_id"] for m in ranked] == ["twin-0", "twin-1", "twin-2", "twin-3"]


def test_a_bad_property_gets_its_own_error_naming_id_and_field(models: list) -> None:
    listings = [
        listing("ok-1"),
        listing("bad-price", price="cheap"),
        "not an object",
        listing("bad-amenity", amenities=["parking", "moat"]),
        {**listing("extra"), "agent_notes": "call after 6"},
        listing("ok-2"),
    ]
    result = rank_properties(models, lead(), listings, top_k=None)
    assert {m["property_id"] for m in result["matches"]} == {"ok-1", "ok-2"}
    errors = result["errors"]
    assert [e.get("property_id") for e in errors] == ["bad-price", None, "bad-amenity", "extra"]
    assert errors[0]["error"] == "InvalidPropertyError"
    assert errors[0]["problems"] == [{"field": "price", "problem": "expected a number, got string"}]
    assert errors[1]["problems"][0] == {"field": "property", "problem": "expected a JSON object, got string"}
    assert errors[2]["problems"][0]["field"] == "amenities"
    assert errors[3]["problems"] == [{"field": "agent_notes", "problem": "unknown field"}]
    assert "call after 6" not in str(result)
    assert result["properties"] == {"received": 6, "scored": 2}


def test_unknown_property_fields_can_be_ignored(models: list) -> None:
    result = rank_properties(models, lead(), [{**listing("extra"), "agent_notes": "x"}], unknown_fields="ignore")
    assert [m["property_id"] for m in result["matches"]] == ["extra"]


def test_bad_preferences_fail_the_request_naming_the_lead_and_field(models: list) -> None:
    with pytest.raises(InvalidLeadError) as caught:
        rank_properties(models, lead(budget_max=-5, property_type="castle"), LISTINGS)
    assert caught.value.lead_id == "lead-1"
    assert caught.value.fields == ["preferences.budget_max", "preferences.property_type"]
    with pytest.raises(InvalidLeadError, match="preferences.budget_min: greater than budget_max"):
        rank_properties(models, lead(budget_min=600_000), LISTINGS)
    with pytest.raises(InvalidLeadError, match="preferences: missing"):
        rank_properties(models, {"id": "lead-2"}, LISTINGS)
    with pytest.raises(InvalidLeadError, match="id: missing"):
        rank_properties(models, {"preferences": preferences()}, LISTINGS)


def test_bad_arguments_are_refused(models: list) -> None:
    with pytest.raises(InvalidBatchError, match="properties must be a JSON array"):
        rank_properties(models, lead(), {"id": "p"})
    with pytest.raises(InvalidBatchError, match="exceed max_batch_size=3"):
        rank_properties(models, lead(), LISTINGS, max_properties=3)
    with pytest.raises(InvalidBatchError, match="top_k"):
        rank_properties(models, lead(), LISTINGS, top_k=0)
    with pytest.raises(InvalidBatchError, match="order_by"):
        rank_properties(models, lead(), LISTINGS, order_by="lead_scorer")


def test_no_properties_is_an_empty_ranking(models: list) -> None:
    result = rank_properties(models, lead(), [])
    assert result["matches"] == [] and result["properties"] == {"received": 0, "scored": 0}


def test_models_without_a_shared_pair_featurizer_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="sharing one featurizer"):
        rank_properties(rules_served(tmp_path, ("property_matcher", "lead_scorer")), lead(), LISTINGS)


def test_rules_served_matches_leave_no_snapshot_to_train_on(models: list) -> None:
    kept: list = []
    rank_properties(models, lead(), LISTINGS, top_k=2, on_scored=kept.extend)
    assert kept == []  # the rules' scores say nothing about a model's traffic


def test_model_served_matches_report_the_derived_features_each_model_saw(tmp_path: Path) -> None:
    registry = registry_at(tmp_path)
    for name in ("property_matcher", "viewing_probability_predictor"):
        (tmp_path / name).mkdir()
        shutil.copy(REPO_MODELS / name / "spec.toml", tmp_path / name / "spec.toml")
        train_and_register(registry, name, rows=1500, folds=2, repeats=1)
    pool = ModelPool(registry)
    served = [pool.get("property_matcher"), pool.get("viewing_probability_predictor")]
    kept: list[ScoredPair] = []
    result = rank_properties(served, lead(), LISTINGS, top_k=2, on_scored=kept.extend)
    top = [m["property_id"] for m in result["matches"]]
    assert [(p.model, p.property_id, p.rank) for p in kept] == [(s.spec.name, pid, r) for s in served for r, pid in enumerate(top, 1)]
    for pair in kept:
        spec = registry.spec(pair.model)
        assert set(pair.features) == set(spec.feature_names) and pair.lead_id == "lead-1"
        # the snapshot reproduces the served probability: it is exactly what the model scored
        again = score_batch(spec, pool.get(pair.model).scorer, [{"id": "x", **pair.features}])[0]
        assert again["probability"] == pytest.approx(pair.probability, abs=1e-6)
    best: list[ScoredPair] = []
    rank_properties(served, lead(), LISTINGS, top_k=2, on_scored=best.extend, scored_limit=1)
    assert [(p.model, p.property_id, p.rank) for p in best] == [(s.spec.name, top[0], 1) for s in served]
    assert scores_pairs(registry.spec("property_matcher")) and not scores_pairs(load_spec(REPO_MODELS, "lead_scorer"))
