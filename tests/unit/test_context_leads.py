"""Context leads through the scoring seam: bad input gets typed errors that never echo message
text, a context lead scores exactly as its derived features do, cards carry the featurizer version."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ml_core.bulk_chunk import score_chunk
from ml_core.context import MAX_MESSAGES, MAX_TEXT_CHARS, derive_features, encode_with_context, expand_leads, version, with_rules
from ml_core.dataset import training_set
from ml_core.errors import InvalidLeadError, SpecError
from ml_core.lead_files import LeadChunk, chunk_leads
from ml_core.onnx_model import OnnxScorer
from ml_core.registry import Registry
from ml_core.scoring import score_batch, score_one
from ml_core.spec import ContextInput, ModelSpec, load_spec, parse_spec
from ml_core.synthetic.lead_conversations import training_frame
from ml_core.training import train

from .helpers import MODEL, REPO_MODELS, categorical_spec_data, valid_lead

SECRET = "Zorblax-7731"  # stands for anything a lead wrote: it must never come back in an error
EXAMPLES = REPO_MODELS.parent / "examples" / "lead_scorer" / "conversations"


def message(sender: str = "lead", at: str = "2026-03-01T10:00:00Z", text: str = f"My name is {SECRET}, asap please") -> dict[str, Any]:
    return {"from": sender, "at": at, "text": text}


def context_lead(lead_id: Any = "c-1", **context: Any) -> dict[str, Any]:
    return {"id": lead_id, "context": {"messages": [message("agent", "2026-03-01T08:00:00Z"), message()], **context}}


@pytest.fixture(scope="module")
def onnx_scorer(served_registry: Registry) -> OnnxScorer:
    artifact = served_registry.load(MODEL)
    return OnnxScorer(MODEL, artifact.version, artifact.onnx)


BAD_CONTEXTS = [
    ("not an object", f"I am {SECRET}", "context"),
    ("messages missing", {"timeline": SECRET}, "context.messages"),
    ("messages not an array", {"messages": {"text": SECRET}}, "context.messages"),
    ("a message not an object", {"messages": [SECRET]}, "context.messages[0]"),
    ("unparseable time", {"messages": [message(at=f"yesterday {SECRET}")]}, "context.messages[0].at"),
    ("a time too long to be one", {"messages": [message(at="2026-03-01T10:00:00Z" + " " * 100)]}, "context.messages[0].at"),
    ("out of time order", {"messages": [message(at="2026-03-02T10:00:00Z"), message(at="2026-03-01T10:00:00Z")]}, "context.messages[1].at"),
    ("unknown sender", {"messages": [{**message(), "from": SECRET}]}, "context.messages[0].from"),
    ("text not a string", {"messages": [{**message(), "text": [SECRET]}]}, "context.messages[0].text"),
    ("lone surrogate", {"messages": [message(text=json.loads('"' + SECRET + ' \\ud800"'))]}, "context.messages[0].text"),
    ("budget min above max", {"messages": [], "budget": {"min": 5, "max": 1}}, "context.budget"),
    ("budget not a number", {"messages": [], "budget": {"max": SECRET}}, "context.budget.max"),
    ("timeline not text", {"messages": [], "timeline": 2026}, "context.timeline"),
    ("unknown employment status", {"messages": [], "employment": {"status": SECRET}}, "context.employment.status"),
    ("years in role negative", {"messages": [], "employment": {"years_in_role": -1}}, "context.employment.years_in_role"),
    ("household of zero", {"messages": [], "household_size": 0}, "context.household_size"),
    ("transactions not an integer", {"messages": [], "previous_transactions": 1.5}, "context.previous_transactions"),
    ("an unknown context field", {"messages": [], SECRET: 1}, f"context.{SECRET}"),
    ("an unknown message field", {"messages": [{**message(), "note": SECRET}]}, "context.messages[0].note"),
]


@pytest.mark.parametrize(("case", "context", "part"), BAD_CONTEXTS, ids=[c[0] for c in BAD_CONTEXTS])
def test_bad_contexts_are_invalid_leads_naming_the_lead_and_the_part(
    spec: ModelSpec, onnx_scorer: OnnxScorer, case: str, context: Any, part: str
) -> None:
    with pytest.raises(InvalidLeadError) as raised:
        score_one(spec, onnx_scorer, {"id": "lead-9", "context": context})
    error = raised.value
    assert error.lead_id == "lead-9" and part in error.fields
    if part != f"context.{SECRET}":  # an unknown key is named (cut to 64 characters), like any unknown field
        assert SECRET not in str(error) and SECRET not in json.dumps(error.args)
    # in a batch, the same lead is an error entry in place and the others still score
    results = score_batch(spec, onnx_scorer, [valid_lead("ok-1"), {"id": "lead-9", "context": context}, context_lead("ok-2")])
    assert [r.get("error") for r in results] == [None, "InvalidLeadError", None]
    assert results[1]["lead_id"] == "lead-9" and part in [p["field"] for p in results[1]["problems"]]


def test_a_lead_with_both_a_context_and_features_is_refused_by_default(spec: ModelSpec, onnx_scorer: OnnxScorer) -> None:
    lead = {**context_lead(), "timeline_urgency": 0.9}
    with pytest.raises(InvalidLeadError) as raised:
        score_one(spec, onnx_scorer, lead)
    assert raised.value.fields == ["context"] and "timeline_urgency" in str(raised.value)


def test_a_spec_may_let_given_features_override_derived_ones(spec: ModelSpec) -> None:
    assert spec.context is not None
    overriding = replace(spec, context=replace(spec.context, direct_features="override"))
    (lead,), derived, errors = expand_leads(overriding, [{**context_lead(), "timeline_urgency": 0.3}])
    assert not errors and lead["timeline_urgency"] == 0.3 and derived[0]["timeline_urgency"] == 0.3
    assert "context" not in lead


def test_a_bad_id_is_reported_with_the_context_problems(spec: ModelSpec) -> None:
    encoded, _ = encode_with_context(spec, [{"id": None, "context": []}])
    (error,) = encoded.errors
    assert error.lead_id is None and [f for f, _ in error.problems] == ["id", "context"]


def test_only_the_last_messages_are_read_and_only_the_first_characters(spec: ModelSpec) -> None:
    # given a 10,000-message thread whose first message is broken
    start = datetime(2026, 3, 1, tzinfo=UTC)
    messages = [message(at="not a time")] + [message("agent", (start + timedelta(seconds=k)).isoformat()) for k in range(9_999)]
    messages[-1] = message(at=messages[-1]["at"], text="x" * 1_000_000)  # and a megabyte text
    messages[-3] = message(at=messages[-3]["at"], text="pre-approved")
    features, problems = derive_features(spec, {"messages": messages})
    # then the broken message is beyond the bound, and the text counts its first characters
    assert not problems and features is not None
    assert features["message_length_avg"] == (len("pre-approved") + MAX_TEXT_CHARS) / 2
    assert features["financing_mentioned"] is True
    assert features == derive_features(spec, {"messages": messages[-MAX_MESSAGES:]})[0]
    # a broken message within the bound is reported with its index in the thread as sent
    messages[-MAX_MESSAGES] = message(at="not a time")
    problem = [f"context.messages[{10_000 - MAX_MESSAGES}].at", "expected an ISO-8601 time, e.g. 2026-03-01T09:30:00Z"]
    assert derive_features(spec, {"messages": messages})[1] == [problem]


def test_a_context_lead_scores_exactly_as_its_derived_features(spec: ModelSpec, onnx_scorer: OnnxScorer) -> None:
    for path in sorted(EXAMPLES.glob("*.json")):
        lead = json.loads(path.read_text())
        from_context = score_one(spec, onnx_scorer, lead)
        from_features = score_one(spec, onnx_scorer, {"id": lead["id"], **from_context["features"]})
        assert "features" not in from_features
        assert set(from_context["features"]) == set(spec.feature_names)
        for key in ("lead_id", "score", "probability", "label", "confidence", "escalated", "model_version"):
            assert from_context[key] == from_features[key], (path.name, key)


def test_examples_range_from_hot_to_cold_under_the_trained_model(spec: ModelSpec, onnx_scorer: OnnxScorer) -> None:
    leads = {p.stem: json.loads(p.read_text()) for p in EXAMPLES.glob("*.json")}
    results = dict(zip(leads, score_batch(spec, onnx_scorer, list(leads.values()))))
    assert results["hot"]["score"] > results["warm"]["score"] > results["cold"]["score"]
    assert results["tricky_negations"]["features"]["financing_mentioned"] is False
    assert results["tricky_negations"]["features"]["timeline_urgency"] == 0.1


def test_a_spec_without_context_leaves_context_leads_to_validation(cat_spec: ModelSpec) -> None:
    leads = [{"id": "a", "context": {"messages": []}}]
    assert expand_leads(cat_spec, leads) == (leads, {}, {})
    encoded, _ = encode_with_context(cat_spec, leads)
    assert ["context", "unknown field"] in encoded.errors[0].problems


@pytest.mark.parametrize(
    ("table", "problem"),
    [({"phrases": "../en.toml"}, "phrases must be"), ({"phrases": "en.toml", "direct_features": "sometimes"}, "direct_features")],
)
def test_a_malformed_context_table_is_a_spec_error(table: dict[str, Any], problem: str) -> None:
    with pytest.raises(SpecError, match=problem):
        parse_spec("tiny", {**categorical_spec_data(), "context": table})


def test_a_phrase_file_beside_the_spec_extends_the_shipped_one_and_changes_the_version(tmp_path: Path, spec: ModelSpec) -> None:
    # given a team's copy of the phrase list with one more financing phrase, beside its spec
    (tmp_path / MODEL).mkdir()
    shutil.copy(REPO_MODELS / MODEL / "spec.toml", tmp_path / MODEL / "spec.toml")
    shipped = Path(__file__).resolve().parents[2] / "ml_core" / "context" / "phrases" / "en.toml"
    text = shipped.read_text().replace('phrases = ["mortgage",', 'phrases = ["hipoteca", "mortgage",')
    (tmp_path / MODEL / "en.toml").write_text(text)
    team = load_spec(tmp_path, MODEL)
    context = {"messages": [message(text="Tenemos la hipoteca")]}
    assert derive_features(spec, context)[0]["financing_mentioned"] is False  # type: ignore[index]
    assert derive_features(team, context)[0]["financing_mentioned"] is True  # type: ignore[index]
    assert version(team) != version(spec) and str(version(spec)).startswith("context-1+en.toml:")


def test_a_missing_or_broken_phrase_file_is_a_spec_error(spec: ModelSpec, tmp_path: Path) -> None:
    assert spec.context is not None
    missing = replace(spec, context=ContextInput("nowhere.toml", str(tmp_path)))
    with pytest.raises(SpecError, match="nowhere.toml"):
        expand_leads(missing, [context_lead()])
    (tmp_path / "broken.toml").write_text("[signals]\n")
    with pytest.raises(SpecError, match="broken.toml"):
        expand_leads(replace(spec, context=ContextInput("broken.toml", str(tmp_path))), [context_lead()])


def test_the_model_card_records_the_featurizer_version(served_registry: Registry, spec: ModelSpec) -> None:
    card = served_registry.card(MODEL, served_registry.champion(MODEL))
    assert card["context_featurizer"]["version"] == version(spec)
    assert card["context_featurizer"]["max_messages"] == MAX_MESSAGES


def test_synthetic_conversations_train_a_model_past_the_quality_gate(spec: ModelSpec) -> None:
    frame = training_frame(spec, 2500, seed=5)
    trained = train(spec, training_set(spec, frame, "synthetic conversations"), seed=5, folds=3)
    assert trained.metrics["roc_auc"] >= spec.quality_gate  # train() refuses below the gate too


def test_bulk_chunks_score_context_leads_as_their_features(spec: ModelSpec, onnx_scorer: OnnxScorer) -> None:
    leads = [json.loads(p.read_text()) for p in sorted(EXAMPLES.glob("*.json"))] + [{"id": "bad", "context": []}]
    (chunk,) = chunk_leads(leads, 100)
    results = score_chunk(spec, onnx_scorer, LeadChunk.from_json(chunk.to_json()))  # as a chunk crosses the broker
    assert results[-1]["error"] == "InvalidLeadError" and results[-1]["problems"][0]["field"] == "context"
    as_features = score_batch(spec, onnx_scorer, [{"id": r["lead_id"], **r["features"]} for r in results[:-1]])
    assert [r["probability"] for r in results[:-1]] == [r["probability"] for r in as_features]


def test_explanations_of_a_context_lead_name_each_features_rule() -> None:
    explanation = {"top": [{"feature": "timeline_urgency", "value": 0.1, "contribution": -0.4}], "rest": 0.0}
    assert "last statement about timing" in with_rules(explanation)["top"][0]["rule"]


def test_a_context_spec_with_a_feature_the_featurizer_cannot_derive_is_a_spec_error(spec: ModelSpec, cat_spec: ModelSpec) -> None:
    assert spec.context is not None
    with pytest.raises(SpecError, match="derives no"):
        expand_leads(replace(cat_spec, context=spec.context), [context_lead()])
