from __future__ import annotations

import inspect
import json
import pickle

import pytest

from ml_core import errors

EXAMPLES = [
    errors.ConcurrentChangeError("lead_scorer", "the challenger changed while v2 was being verified"),
    errors.StoreUnavailableError("postgresql+psycopg://leadscore:***@db/leadscore", "OperationalError: connection refused"),
    errors.StoreSchemaError("sqlite:///.data/leadscore.sqlite3", "schema is at revision none, this leadscore needs 0001"),
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


def test_a_record_with_thousands_of_problems_keeps_a_short_message_and_a_count():
    # Given a lead missing 10,000 features (a 10,000-feature spec, an empty lead)
    problems = [[f"feature_{i:05d}", "missing (required)"] for i in range(10_000)]

    error = errors.InvalidLeadError("lead-1", problems)

    # Then what crosses the broker and lands in the result backend stays small, and says how many
    assert len(json.dumps(error.args)) < 4_000 and len(str(error)) < 4_000
    assert error.total == 10_000 and len(error.problems) == errors.MAX_PROBLEMS
    assert str(error).endswith(f"; and {10_000 - errors.MAX_PROBLEMS:,} more problems")
    rebuilt = type(error)(*json.loads(json.dumps(error.args)))
    assert str(rebuilt) == str(error) and rebuilt.total == 10_000


def test_a_spec_naming_thousands_of_unknown_features_gets_a_short_message():
    from ml_core.spec import parse_spec

    data = {"target": "y", "quality_gate": 0.5, "bands": {"hot": 70, "warm": 40},
            "features": [{"name": "a", "kind": "numeric"}],
            "fallback": {"intercept": 0.0, "weights": {f"feature_{i:05d}": 1.0 for i in range(10_000)}}}

    with pytest.raises(errors.SpecError) as caught:
        parse_spec("m", data)

    assert len(json.dumps(caught.value.args)) < 2_000
    assert "'feature_00000'" in str(caught.value) and f"and {10_000 - errors.MAX_PROBLEMS:,} more" in str(caught.value)
    assert len(str(errors.SpecError("m", "x" * 300_000))) < 2_000
