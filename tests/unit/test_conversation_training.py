"""Training from raw conversations: a JSON-lines table whose rows are leads with a label, their
features derived by the code that serves, bad rows refused by row, id and part, never by text."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from leadscore.cli.main import main
from leadscore.settings import get_settings
from ml_core.context import encode_with_context, version
from ml_core.dataset import json_lines_table, read_training_table, training_set
from ml_core.errors import DatasetError
from ml_core.outcomes import OutcomeStore
from ml_core.retrain import RetrainPolicy, training_data
from ml_core.spec import ModelSpec
from ml_core.store.state import StateStore, embedded_url
from ml_core.synthetic.lead_conversations import conversations, training_frame, training_lines
from tests.stores import registry_at, store_url

from .helpers import MODEL, copy_spec, valid_lead

SECRET = "Vellichor-2291"  # stands for what a lead wrote: no error may repeat it


def write_lines(path: Path, rows: list[Any]) -> Path:
    path.write_bytes(b"".join(r if isinstance(r, bytes) else json.dumps(r).encode() + b"\n" for r in rows))
    return path


def thread(text: str = f"We're pre-approved, I'm {SECRET}.", at: str = "2026-03-01T10:00:00Z") -> dict[str, Any]:
    return {"messages": [{"from": "agent", "at": "2026-03-01T08:00:00Z", "text": "Hi"}, {"from": "lead", "at": at, "text": text}]}


def test_a_conversation_table_derives_what_serving_derives(spec: ModelSpec, tmp_path: Path) -> None:
    # given synthetic conversations written as a JSON-lines training table
    path = tmp_path / "conversations.jsonl"
    path.write_bytes(b"".join(training_lines(300, seed=3)))
    # when it is read for training
    frame, source = read_training_table(spec, path)
    # then its features are the generator's derived ones, and those serving derives from each lead
    expected = training_frame(spec, 300, seed=3)
    assert frame[list(spec.feature_names)].to_dict("records") == expected[list(spec.feature_names)].to_dict("records")
    assert list(frame[spec.target]) == list(expected[spec.target])
    leads, _ = conversations(300, seed=3)
    served, _ = encode_with_context(spec, leads)  # the float32 rows ONNX scores
    np.testing.assert_array_equal(training_set(spec, frame, source).X.astype(np.float32), served.X)
    assert source == f"conversations.jsonl (300 conversations derived by {version(spec)})"
    assert "context" not in frame.columns  # only what was derived: no text is kept


def test_a_table_may_mix_conversations_and_leads_given_as_features(spec: ModelSpec, tmp_path: Path) -> None:
    rows = [{"id": "c", "context": thread(), "converted": 1}, {**valid_lead("f"), "converted": 0}, b"\n"]
    frame, conversations_read = json_lines_table(spec, write_lines(tmp_path / "mixed.jsonl", rows))
    assert conversations_read == 1 and list(frame["id"]) == ["c", "f"]
    assert frame["financing_mentioned"][0] == True  # noqa: E712 - derived from "pre-approved"
    assert frame["message_length_avg"][1] == valid_lead()["message_length_avg"]


BAD_ROWS = [
    ("not JSON", b'{"id": "x", "context": ' + SECRET.encode() + b"\n", "row 1: row: not a JSON value"),
    ("not UTF-8", b'{"id": "x", "text": "\xff' + SECRET.encode() + b'"}\n', "row 1: row: not valid UTF-8"),
    ("not an object", [SECRET], "row 1: row: expected a JSON object, got array"),
    ("a bad time", {"id": "t", "context": thread(at=f"at {SECRET}"), "converted": 1}, "row 1 (id t): context.messages[1].at: expected an ISO-8601"),
    ("a context that is not an object", {"id": "o", "context": SECRET, "converted": 1}, "row 1 (id o): context: expected a JSON object"),
    ("context and features", {**valid_lead("b"), "context": thread(), "converted": 1}, "row 1 (id b): context: given with features"),
    ("a conversation without an id", {"context": thread(), "converted": 1}, "row 1: id: missing (required)"),
]


@pytest.mark.parametrize(("case", "bad", "message"), BAD_ROWS, ids=[c[0] for c in BAD_ROWS])
def test_a_bad_row_is_refused_by_row_id_and_part_without_its_text(spec: ModelSpec, tmp_path: Path, case: str, bad: Any, message: str) -> None:
    path = write_lines(tmp_path / "bad.jsonl", [{"id": "ok", "context": thread(), "converted": 1}, bad, {"id": "ok2", "context": [], "converted": 0}])
    with pytest.raises(DatasetError) as caught:
        json_lines_table(spec, path)
    assert f"bad.jsonl: 2 invalid rows, first is {message}" in str(caught.value)
    assert SECRET not in str(caught.value)


def test_labels_are_checked_as_in_any_training_table(spec: ModelSpec, tmp_path: Path) -> None:
    path = write_lines(tmp_path / "labels.jsonl", [{"id": "a", "context": thread(), "converted": 1}, {"id": "b", "context": thread()}])
    frame, source = read_training_table(spec, path)
    with pytest.raises(DatasetError, match="target 'converted' must be 0 or 1; 1 rows are not \\(first at row 1\\)"):
        training_set(spec, frame, source)


def test_a_conversation_for_a_model_not_scored_from_conversations_is_refused(cat_spec: ModelSpec, tmp_path: Path) -> None:
    path = write_lines(tmp_path / "cat.jsonl", [{"id": "a", "context": thread(), cat_spec.target: 1}])
    with pytest.raises(DatasetError, match="row 0 \\(id a\\): context: model 'tiny' is not scored from conversations"):
        json_lines_table(cat_spec, path)


@pytest.fixture
def models_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    copy_spec(tmp_path / "models")
    monkeypatch.setenv("LEADSCORE_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("LEADSCORE_DATABASE_URL", store_url(tmp_path / "models"))  # this test's own store
    get_settings.cache_clear()
    yield tmp_path / "models"
    get_settings.cache_clear()


def test_leadscore_train_reads_conversations_and_records_the_featurizer(models_dir: Path, tmp_path: Path, spec: ModelSpec) -> None:
    # given 3,000 labelled synthetic conversations
    path = tmp_path / "conversations.jsonl"
    path.write_bytes(b"".join(training_lines(3000, seed=11)))
    # when lead_scorer is trained from them
    result = CliRunner().invoke(main, ["train", MODEL, "--data", str(path), "--folds", "3", "--repeats", "1",
                                       "--families", "logistic_regression", "--quiet"])
    assert result.exit_code == 0, result.output
    # then the card records the featurizer that derived its rows, and where they came from
    registry = registry_at(models_dir)
    card = registry.card(MODEL, registry.champion(MODEL))
    assert card["context_featurizer"]["version"] == version(spec)
    assert card["data"]["source"] == f"conversations.jsonl (3,000 conversations derived by {version(spec)})"
    assert card["data"]["rows"] == 3000
    # and a file of bad rows stops training with the row named (exit 1, nothing registered)
    bad = write_lines(tmp_path / "bad.jsonl", [{"id": "x", "context": {"messages": SECRET}, "converted": 1}])
    refused = CliRunner().invoke(main, ["train", MODEL, "--data", str(bad), "--quiet"])
    assert refused.exit_code == 1 and "bad.jsonl: 1 invalid rows, first is row 0 (id x): context.messages: expected a JSON array" in refused.stderr
    assert SECRET not in refused.output and registry.versions(MODEL) == ["v1"]


def test_retraining_may_take_its_base_rows_from_conversations(spec: ModelSpec, tmp_path: Path) -> None:
    path = tmp_path / "base.jsonl"
    path.write_bytes(b"".join(training_lines(200, seed=4)))
    frame, how = training_data(spec, OutcomeStore(StateStore(embedded_url(tmp_path))), RetrainPolicy(base_data=path))
    assert (len(frame), how["base"]) == (200, 200)
    assert how["base_source"] == f"base.jsonl (200 conversations derived by {version(spec)})"
    assert set(frame.columns) == {*spec.feature_names, spec.target}
