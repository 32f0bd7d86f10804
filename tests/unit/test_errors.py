from __future__ import annotations

import inspect
import json
import pickle

import pytest

from ml_core import errors

EXAMPLES = [
    errors.LeadscoreError("something went wrong"),
    errors.InvalidLeadError("lead-1", [["budget", "missing (required)"], ["channel", "unknown category"]]),
    errors.InvalidLeadError(None, [("lead", "expected a JSON object, got string")]),
    errors.InvalidRecordError("r-1", [["field", "is NaN"]]),
    errors.InvalidPropertyError("prop-1", [["price", "expected a number, got string"]]),
    errors.InvalidBatchError("leads must be a JSON array"),
    errors.InvalidPayloadError("JSON nested deeper than 32 levels"),
    errors.InvalidArgumentError("explain", "expected true or false"),
    errors.SpecError("lead_scorer", "feature names repeat"),
    errors.DatasetError("lead_scorer", "target column 'converted' is missing"),
    errors.ModelNotFoundError("lead_scorer"),
    errors.ModelNotFoundError("lead_scorer", None, "no champion registered"),
    errors.ModelNotFoundError("lead_scorer", "v3", "registered versions are ['v1']"),
    errors.ArtifactIntegrityError("lead_scorer", "v1", "model.onnx", "fails its checksum"),
    errors.ModelLoadError("lead_scorer", "InvalidProtobuf"),
    errors.RegistrationRefusedError("lead_scorer", ["quality gate: short", "ONNX parity: off"]),
    errors.ExplanationUnavailableError("lead_scorer", "rules", "scored by the rule-based fallback"),
    errors.LeadFileError("leads.csv", "no 'id' column: every lead needs an id"),
    errors.BulkJobError("3f2c9a", "chunk 4 failed: ModelNotFoundError: model 'x' not found"),
    errors.InvalidOutcomeError("lead-1", "occurred_at: needs a timezone"),
    errors.RolloutError("lead_scorer", "no challenger to promote"),
]


def test_every_error_class_has_an_example():
    classes = {
        cls
        for _, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, errors.LeadscoreError) and cls.__module__ == errors.__name__
    }
    assert {type(e) for e in EXAMPLES} == classes


@pytest.mark.parametrize("error", EXAMPLES, ids=lambda e: type(e).__name__)
def test_survives_a_json_round_trip(error):
    # Celery sends (type, module, args) as JSON and rebuilds the exception with type(e)(*args).
    args = json.loads(json.dumps(error.args))

    rebuilt = type(error)(*args)

    assert type(rebuilt) is type(error)
    assert str(rebuilt) == str(error)
    assert rebuilt.args == error.args
    assert vars(rebuilt) == vars(error)


@pytest.mark.parametrize("error", EXAMPLES, ids=lambda e: type(e).__name__)
def test_survives_pickle(error):
    rebuilt = pickle.loads(pickle.dumps(error))
    assert type(rebuilt) is type(error) and str(rebuilt) == str(error)


def test_messages_name_what_failed():
    lead = errors.InvalidLeadError("lead-9", [["budget", "is NaN"]])
    assert str(lead) == "lead 'lead-9' is invalid: budget: is NaN"
    assert lead.fields == ["budget"]
    assert "version 'v3'" in str(errors.ModelNotFoundError("m", "v3"))
    assert "version" not in str(errors.ModelNotFoundError("m"))
    assert "model.onnx" in str(errors.ArtifactIntegrityError("m", "v1", "model.onnx", "is missing"))
    assert str(errors.RegistrationRefusedError("m", ["a", "b"])).endswith("a; b")
