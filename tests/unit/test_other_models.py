"""The four specs beyond lead_scorer: generators, churn's threshold fallback, tags and schemas."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml_core.errors import InvalidLeadError, InvalidPropertyError, SpecError
from ml_core.fallback import RuleScorer
from ml_core.features import encode_frame, encode_leads
from ml_core.featurizers import featurize_table
from ml_core.lead_profile import split_lead
from ml_core.spec import load_spec, parse_schema
from ml_core.synthetic import generate
from tests.unit.pairs import REPO_MODELS

NEW_MODELS = {
    "churn_predictor": ("churned", 0.20, 0.35),
    "property_matcher": ("good_match", 0.35, 0.48),
    "property_interest_predictor": ("interested", 0.25, 0.40),
    "viewing_probability_predictor": ("viewing_booked", 0.17, 0.30),
}


@pytest.mark.parametrize("name", sorted(NEW_MODELS))
def test_generator_is_seeded_valid_for_its_spec_and_in_its_documented_positive_rate(name: str) -> None:
    target, low, high = NEW_MODELS[name]
    spec = load_spec(REPO_MODELS, name)
    frame = generate(name, 3000, seed=9)
    pd.testing.assert_frame_equal(frame, generate(name, 3000, seed=9))
    assert not frame.equals(generate(name, 3000, seed=10))
    table = featurize_table(spec, frame)
    encoded = encode_frame(spec, table)
    assert encoded.errors == [] and encoded.X.shape == (3000, len(spec.columns))
    assert spec.target == target and low <= frame[target].mean() <= high


def test_churn_story_shows_in_recency_frequency_and_trend() -> None:
    frame = generate("churn_predictor", 20000, seed=4)
    churned, stayed = frame[frame.churned == 1], frame[frame.churned == 0]
    assert churned.days_since_last_activity.median() > 1.5 * stayed.days_since_last_activity.median()
    assert churned.messages_last_30d.mean() < stayed.messages_last_30d.mean()
    assert churned.engagement_trend.mean() < stayed.engagement_trend.mean() - 0.2


def test_pair_story_good_matches_fit_budget_type_and_must_haves() -> None:
    spec = load_spec(REPO_MODELS, "property_matcher")
    table = featurize_table(spec, generate("property_matcher", 20000, seed=4))
    good, bad = table[table.good_match == 1], table[table.good_match == 0]
    assert good.over_budget.mean() < bad.over_budget.mean() / 2
    assert good.type_match.mean() > bad.type_match.mean() + 0.08
    assert good.must_have_coverage.mean() > bad.must_have_coverage.mean() + 0.2


def test_churn_fallback_is_the_fourteen_day_silence_threshold() -> None:
    spec = load_spec(REPO_MODELS, "churn_predictor")
    rules = RuleScorer(spec, "test")
    quiet = {f.name: 0 for f in spec.features}
    leads = [{**quiet, "id": str(days), "days_since_last_activity": days} for days in (3, 13.9, 14, 14.1, 30)]
    p = rules.predict_proba(encode_leads(spec, leads).X)
    assert p[2] == pytest.approx(0.5)
    assert p[0] < 0.1 and p[1] < 0.5 < p[3] and p[4] > 0.95


def test_tags_validate_like_any_feature_in_json_and_tables() -> None:
    schema = parse_schema("listing", [{"name": "amenities", "kind": "tags", "categories": ["pool", "garden"], "default": []}])
    encoded = encode_leads(schema, [{"id": "a", "amenities": ["garden"]}, {"id": "b"}, {"id": "c", "amenities": "pool"}], entity="property")
    assert encoded.X.tolist() == [[0.0, 1.0], [0.0, 0.0]]
    assert encoded.errors[0].to_json()["property_id"] == "c"
    assert encoded.errors[0].problems == [["amenities", "expected an array of strings, got string"]]
    table = encode_frame(schema, pd.DataFrame({"amenities": ["pool|garden", "", np.nan]}))
    assert table.X.tolist() == [[1.0, 1.0], [0.0, 0.0], [0.0, 0.0]]


def test_malformed_schemas_and_featurizer_names_are_spec_errors() -> None:
    with pytest.raises(SpecError, match="lists no categories"):
        parse_schema("x", [{"name": "t", "kind": "tags"}])
    with pytest.raises(SpecError, match="must be a list of its categories"):
        parse_schema("x", [{"name": "t", "kind": "tags", "categories": ["a"], "default": ["b"]}])
    with pytest.raises(SpecError, match="repeat or include 'id'"):
        parse_schema("x", [{"name": "id", "kind": "numeric"}])
    spec = load_spec(REPO_MODELS, "property_matcher")
    with pytest.raises(SpecError, match="no featurizer module"):
        featurize_table(spec.__class__(**{**spec.__dict__, "featurizer": "nope"}), pd.DataFrame({"x": [1]}))


def test_invalid_property_error_survives_the_json_round_trip_of_its_args() -> None:
    error = InvalidPropertyError("p-1", [["price", "out of range [1, 1e+09]: 0"]])
    again = InvalidPropertyError(*error.args)
    assert again.property_id == "p-1" and again.fields == ["price"]
    assert str(again) == "property 'p-1' is invalid: price: out of range [1, 1e+09]: 0"
    assert InvalidLeadError(lead_id="l", problems=[["a", "b"]]).lead_id == "l"


def test_a_profile_lead_gives_each_model_its_own_fields() -> None:
    specs = [load_spec(REPO_MODELS, n) for n in ("lead_scorer", "churn_predictor")]
    lead = {"id": 7, "response_time_hours": 2.0, "timeline_urgency": 0.5, "engagement_trend": -0.2, "preferences": {}}
    lead_id, views = split_lead(lead, specs, nested=("preferences",))
    assert lead_id == "7"
    assert views["lead_scorer"] == {"id": 7, "response_time_hours": 2.0, "timeline_urgency": 0.5}
    assert views["churn_predictor"] == {"id": 7, "response_time_hours": 2.0, "engagement_trend": -0.2}
    with pytest.raises(InvalidLeadError) as caught:
        split_lead({**lead, "ssn": "x"}, specs, nested=("preferences",))
    assert caught.value.problems == [{"field": "ssn", "problem": "unknown field"}]
    assert split_lead({**lead, "ssn": "x"}, specs, unknown_fields="ignore")[1]["lead_scorer"]["id"] == 7
    with pytest.raises(InvalidLeadError, match="expected a JSON object"):
        split_lead(["not", "a", "lead"], specs)
