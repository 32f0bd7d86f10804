"""Model names are identifiers, never paths; record ids are printable text."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from ml_core.errors import InvalidLeadError, InvalidOutcomeError, ModelNotFoundError
from ml_core.features import encode_leads
from ml_core.identifiers import id_problem, model_name
from ml_core.outcomes import parse_outcome
from ml_core.rollout import history
from ml_core.spec import load_spec
from tests.unit.helpers import MODEL, REPO_MODELS, copy_spec, valid_lead

HOSTILE_NAMES = ["/etc", "../outside/evil", "lead_scorer/../churn_predictor", "lead_scorer/", "Lead_Scorer", "",
                 "a" * 65, "lead\x00scorer", "lead scorer", 123, None, ["lead_scorer"], {"name": "lead_scorer"}]
OPENED: list[str] = []


def _record_opens(event: str, args: tuple) -> None:  # type: ignore[type-arg]
    if event == "open" and OPENED and OPENED[0] == "on":
        OPENED.append(str(args[0]))


sys.addaudithook(_record_opens)


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_a_hostile_model_name_is_refused_without_touching_the_filesystem(tmp_path: Path, name: object) -> None:
    # Given a models directory, and an "evil" model directory beside it that a caller could name
    registry = copy_spec(tmp_path / "models")
    evil = tmp_path / "outside" / "evil"
    evil.mkdir(parents=True)
    (evil / "spec.toml").write_bytes((registry.root / MODEL / "spec.toml").read_bytes())
    OPENED[:] = ["on"]
    try:
        # When every registry entry point is asked for the hostile name
        for call in (registry.spec, registry.champion, registry.versions, registry.load, lambda n: registry.card(n, "v1"),
                     lambda n: registry.load_native(n, "v1"), lambda n: load_spec(registry.root, n), lambda n: history(registry, n)):
            with pytest.raises(ModelNotFoundError) as caught:
                call(name)
            # Then the error is typed and never echoes a filesystem path
            assert str(tmp_path) not in str(caught.value) and "/etc" not in str(caught.value)
    finally:
        opened, OPENED[:] = OPENED[1:], []
    # And nothing at all was opened on its behalf
    assert opened == []


def test_valid_model_names() -> None:
    assert model_name("lead_scorer") == "lead_scorer"
    assert model_name("m" + "0" * 63) == "m" + "0" * 63


@pytest.mark.parametrize("lead_id", ["a\nb\x1b[31mred", "lead\x00evil", "tab\there", "line\u2028sep", "x" * 129, ""])
def test_ids_with_control_characters_are_refused_naming_the_field(lead_id: str) -> None:
    encoded = encode_leads(load_spec(REPO_MODELS, MODEL), [valid_lead(lead_id)])
    assert not encoded.index.size
    assert encoded.errors[0].problems[0][0] == "id"
    assert isinstance(encoded.errors[0].to_exception(), InvalidLeadError)
    assert id_problem(lead_id)


def test_printable_ids_are_kept() -> None:
    encoded = encode_leads(load_spec(REPO_MODELS, MODEL), [valid_lead("Müller & Söhne #42"), valid_lead(17)])
    assert encoded.ids == ["Müller & Söhne #42", "17"]


@pytest.mark.parametrize(
    ("lead_id", "occurred_at", "field"),
    [("a\nb", "2025-03-01T10:00:00Z", "lead_id"), ("lead\x00x", "2025-03-01T10:00:00Z", "lead_id"),
     ("lead-1", "0001-01-01T00:00:00Z", "occurred_at"), ("lead-1", "1970-01-01T00:00:00Z", "occurred_at")],
)
def test_outcomes_refuse_forged_ids_and_impossible_dates(lead_id: str, occurred_at: str, field: str) -> None:
    with pytest.raises(InvalidOutcomeError, match=f"{field}:"):
        parse_outcome(lead_id, 1, occurred_at)


def test_outcomes_refuse_a_control_character_in_the_property_id() -> None:
    with pytest.raises(InvalidOutcomeError, match="property_id:"):
        parse_outcome("lead-1", 1, "2025-03-01T10:00:00Z", "prop\r\nX", pair_model=True)


@pytest.mark.parametrize("argv", [["score", "--sample", "--model", "../churn_predictor"], ["promote", "/etc"],
                                  ["outcomes", "lead_scorer/../churn_predictor"], ["drift", "lead_scorer", "BAD"]])
def test_the_cli_refuses_a_hostile_model_name_before_doing_anything(argv: list[str]) -> None:
    from leadscore.cli.main import main

    result = CliRunner().invoke(main, argv)
    assert result.exit_code == 2
    assert "is not a model name" in result.output


@pytest.mark.parametrize("argv", [["promote", "nosuchmodel"], ["rollback", "nosuchmodel"], ["history", "nosuchmodel"],
                                  ["outcomes", "nosuchmodel"], ["drift", "nosuchmodel"], ["retrain", "nosuchmodel"],
                                  ["report", "nosuchmodel"], ["score", "--sample", "--model", "nosuchmodel"],
                                  ["train", "nosuchmodel"], ["score-file", "x.csv", "--model", "nosuchmodel"]])
def test_an_unknown_model_is_one_error_with_one_exit_code_everywhere(argv: list[str]) -> None:
    from leadscore.cli.main import main

    result = CliRunner().invoke(main, argv)
    assert result.exit_code == 2
    assert "no model 'nosuchmodel'" in result.output and "lead_scorer" in result.output
