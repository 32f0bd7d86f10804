from __future__ import annotations

import numpy as np
import pytest

from ml_core.errors import InvalidBatchError, InvalidLeadError
from ml_core.fallback import RuleScorer
from ml_core.features import encode_leads
from ml_core.onnx_model import OnnxScorer
from ml_core.scoring import confidence, score_batch, score_one
from tests import factories

from .helpers import MODEL, valid_lead

RESULT_KEYS = {
    "lead_id",
    "score",
    "probability",
    "label",
    "confidence",
    "escalated",
    "model",
    "model_version",
    "served_by",
    "latency_ms",
}


@pytest.fixture(scope="module")
def onnx_scorer(served_registry):
    artifact = served_registry.load(MODEL)
    return OnnxScorer(MODEL, artifact.version, artifact.onnx)


@pytest.fixture(scope="module")
def leads():
    return factories.leads(40, 77)


class FixedScorer:
    """Returns preset probabilities, to put scores exactly where a test needs them."""

    name, version, served_by, reason = MODEL, "v-test", "onnx", ""
    decision = None

    def __init__(self, probabilities):
        self.probabilities = np.asarray(probabilities, dtype=np.float64)

    def predict_proba(self, X):
        assert len(X) == len(self.probabilities)
        return self.probabilities

    def route(self, X):
        return self.predict_proba(X), self


def test_results_come_back_in_input_order_with_documented_keys(spec, onnx_scorer, leads):
    results = score_batch(spec, onnx_scorer, leads)

    assert [r["lead_id"] for r in results] == [lead["id"] for lead in leads]
    for result in results:
        assert set(result) == RESULT_KEYS
        assert 0 <= result["score"] <= 100
        assert 0 <= result["probability"] <= 1
        assert result["score"] == pytest.approx(result["probability"] * 100, abs=0.006)
        assert result["label"] == spec.bands.label(result["score"])
        assert result["confidence"] == pytest.approx(max(result["probability"], 1 - result["probability"]), abs=2e-6)
        assert (result["model"], result["model_version"], result["served_by"]) == (MODEL, "v1", "onnx")
        assert isinstance(result["latency_ms"], float) and result["latency_ms"] >= 0


def test_probabilities_are_the_scorers(spec, onnx_scorer, leads):
    expected = onnx_scorer.predict_proba(encode_leads(spec, leads).X)
    got = [r["probability"] for r in score_batch(spec, onnx_scorer, leads)]
    np.testing.assert_allclose(got, expected, atol=1e-6)
    # a real model spreads its leads out
    assert np.ptp(got) > 0.1


def test_labels_follow_the_spec_bands(spec):
    hot, warm = spec.bands.hot / 100, spec.bands.warm / 100
    probabilities = [0.999, hot, hot - 0.001, warm, warm - 0.001, 0.0]
    leads = [valid_lead(str(i)) for i in range(len(probabilities))]

    results = score_batch(spec, FixedScorer(probabilities), leads)

    assert [r["label"] for r in results] == ["hot", "hot", "warm", "warm", "cold", "cold"]
    assert [r["label"] for r in results] == [spec.bands.label(r["score"]) for r in results]


def test_out_of_range_probabilities_are_clipped(spec):
    results = score_batch(spec, FixedScorer([1.2, -0.1]), [valid_lead("a"), valid_lead("b")])
    assert [(r["score"], r["probability"], r["confidence"]) for r in results] == [(100.0, 1.0, 1.0), (0.0, 0.0, 1.0)]


def test_confidence_is_distance_from_a_coin_toss():
    np.testing.assert_allclose(confidence(np.array([0.5, 0.93, 0.07, 0.0, 1.0])), [0.5, 0.93, 0.93, 1.0, 1.0])


def test_same_lead_scores_the_same(spec, onnx_scorer, leads):
    lead = leads[3]
    first, second = score_batch(spec, onnx_scorer, [lead, dict(lead)])
    again = score_one(spec, onnx_scorer, lead)
    for key in ("score", "probability", "label", "confidence"):
        assert first[key] == second[key] == again[key]


def test_score_does_not_depend_on_the_rest_of_the_batch(spec, onnx_scorer, leads):
    alone = score_one(spec, onnx_scorer, leads[5])
    in_batch = score_batch(spec, onnx_scorer, leads)[5]
    assert in_batch["probability"] == pytest.approx(alone["probability"], abs=1e-6)


def test_invalid_leads_become_error_entries_in_place(spec, onnx_scorer, leads):
    batch = [leads[0], valid_lead("bad", timeline_urgency=7), "junk", leads[1]]

    results = score_batch(spec, onnx_scorer, batch)

    assert results[0]["lead_id"] == leads[0]["id"] and "score" in results[0]
    assert results[3]["lead_id"] == leads[1]["id"] and "score" in results[3]
    assert results[1]["error"] == "InvalidLeadError"
    assert results[1]["lead_id"] == "bad"
    assert [p["field"] for p in results[1]["problems"]] == ["timeline_urgency"]
    assert results[2]["error"] == "InvalidLeadError" and results[2]["lead_id"] is None
    assert "score" not in results[1] and "score" not in results[2]


def test_all_invalid_batch_never_calls_the_scorer(spec):
    class Exploding(FixedScorer):
        def predict_proba(self, X):
            raise AssertionError("scored an empty matrix")

    results = score_batch(spec, Exploding([]), [valid_lead("x", questions_asked=-1)])
    assert results[0]["error"] == "InvalidLeadError"
    assert score_batch(spec, Exploding([]), []) == []


def test_unknown_fields_policy_is_passed_through(spec, onnx_scorer):
    lead = valid_lead("x", crm_owner="alice")
    assert score_batch(spec, onnx_scorer, [lead])[0]["error"] == "InvalidLeadError"
    assert "score" in score_batch(spec, onnx_scorer, [lead], unknown_fields="ignore")[0]


def test_fallback_results_say_why(spec):
    scorer = RuleScorer(spec, "no champion registered")
    (result,) = score_batch(spec, scorer, [valid_lead("x")])
    assert set(result) == RESULT_KEYS | {"fallback_reason"}
    assert (result["served_by"], result["model_version"], result["fallback_reason"]) == (
        "fallback",
        "rules",
        "no champion registered",
    )


@pytest.mark.parametrize("leads", [{"id": "x"}, "leads", None, 3])
def test_batch_that_is_not_a_list(spec, onnx_scorer, leads):
    with pytest.raises(InvalidBatchError, match="must be a JSON array"):
        score_batch(spec, onnx_scorer, leads)


def test_batch_larger_than_max_batch_size(spec, onnx_scorer):
    leads = [valid_lead(str(i)) for i in range(3)]
    assert len(score_batch(spec, onnx_scorer, leads, max_batch_size=3)) == 3
    with pytest.raises(InvalidBatchError, match="3 leads exceed max_batch_size=2"):
        score_batch(spec, onnx_scorer, leads, max_batch_size=2)


def test_tuple_batch_is_accepted(spec, onnx_scorer):
    assert [r["lead_id"] for r in score_batch(spec, onnx_scorer, (valid_lead("a"), valid_lead("b")))] == ["a", "b"]


def test_score_one_returns_one_result(spec, onnx_scorer):
    result = score_one(spec, onnx_scorer, valid_lead("solo"))
    assert set(result) == RESULT_KEYS and result["lead_id"] == "solo"


def test_score_one_raises_for_an_invalid_lead(spec, onnx_scorer):
    lead = valid_lead("bad-1", questions_asked=1.5)
    del lead["timeline_urgency"]

    with pytest.raises(InvalidLeadError) as info:
        score_one(spec, onnx_scorer, lead)

    assert info.value.lead_id == "bad-1"
    assert info.value.fields == ["questions_asked", "timeline_urgency"]
    assert "bad-1" in str(info.value)


def test_score_one_raises_for_a_non_object(spec, onnx_scorer):
    with pytest.raises(InvalidLeadError) as info:
        score_one(spec, onnx_scorer, ["not", "a", "lead"])
    assert info.value.lead_id is None
    assert info.value.fields == ["lead"]
