"""The cache digest depends on the encoded features and the spec only; packed results round-trip."""

from __future__ import annotations

import numpy as np

from leadscore.stores.cache import entry_key
from ml_core.cache_entry import cacheable, feature_digest, pack, unpack
from ml_core.features import encode_leads
from ml_core.spec import ModelSpec

from .helpers import valid_lead


def digest(spec: ModelSpec, lead: dict) -> str:
    encoded = encode_leads(spec, [lead])
    assert not encoded.errors
    return feature_digest(spec.sha256, encoded.X[0])


def test_digest_ignores_the_id_field_order_and_json_spelling(spec: ModelSpec) -> None:
    lead = valid_lead("lead-1")
    reordered = dict(reversed(list(valid_lead("someone-else").items())))
    respelled = valid_lead("lead-3", price_range_mentioned=1, questions_asked=3.0, timeline_urgency=0.25)
    assert digest(spec, lead) == digest(spec, reordered) == digest(spec, respelled)


def test_digest_changes_with_any_feature_and_with_the_spec(spec: ModelSpec) -> None:
    base = digest(spec, valid_lead())
    assert digest(spec, valid_lead(timeline_urgency=0.5)) != base
    assert digest(spec, valid_lead(previous_real_estate_experience=1)) != base
    row = encode_leads(spec, [valid_lead()]).X[0]
    assert feature_digest("another-spec", row) != base


def test_negative_zero_is_the_same_vector(spec: ModelSpec) -> None:
    row = encode_leads(spec, [valid_lead(timeline_urgency=0.0)]).X[0]
    negative = row.copy()
    negative[spec.columns.index("timeline_urgency")] = np.float32(-0.0)
    assert negative.tobytes() != row.tobytes()
    assert feature_digest(spec.sha256, negative) == feature_digest(spec.sha256, row)


def test_packed_result_is_compressed_and_given_back_for_the_asking_lead() -> None:
    result = {"lead_id": "lead-1", "score": 61.83, "probability": 0.618273, "label": "hot", "confidence": 0.618273,
              "escalated": True, "model": "lead_scorer", "model_version": "v3", "served_by": "onnx", "latency_ms": 0.84,
              "explanation": {"top": []}, "features": {"questions_asked": 3}}  # features: a conversation's own
    blob = pack(result)
    assert b"lead-1" not in blob and b"lead_scorer" not in blob  # compressed, and without the id
    back = unpack(blob, "lead-2")
    assert back["lead_id"] == "lead-2"
    assert "latency_ms" not in back and "explanation" not in back and "features" not in back
    assert {k: v for k, v in back.items() if k != "lead_id"} == {
        k: v for k, v in result.items() if k not in ("lead_id", "latency_ms", "explanation", "features")
    }


def test_cache_key_names_model_version_and_digest_only() -> None:
    assert entry_key("lead_scorer", "v3", "ab12") == "leadscore:cache:{lead_scorer}:v3:ab12"


def test_one_cache_policy_keeps_rules_canary_errors_and_other_versions_out() -> None:
    # The side effects (after a score) and prewarm (rescoring recent leads, where the model may
    # fail mid-run and the breaker hand the rest to the rules) both decide with ``cacheable``.
    fresh = {"lead_id": "a", "served_by": "onnx", "model_version": "v2", "probability": 0.4}
    assert cacheable(fresh) and cacheable(fresh, "v2")
    assert not cacheable({**fresh, "served_by": "fallback", "model_version": "rules"}, "v2")
    assert not cacheable({**fresh, "served_by": "fallback", "model_version": "rules"})
    assert not cacheable(fresh, "v1")
    assert not cacheable({**fresh, "rollout": {"mode": "canary"}})
    assert not cacheable({**fresh, "error": "InvalidLeadError"})
