"""Champion/challenger pointers, canary selection and the model's history (no services)."""

from __future__ import annotations

import pytest

from ml_core import rollout
from ml_core.errors import ArtifactIntegrityError, RolloutError
from ml_core.registry import ONNX_FILE, Registry
from ml_core.training import TrainedModel
from tests.stores import set_pointers

from .helpers import MODEL


@pytest.fixture
def three_versions(registered: Registry, trained: TrainedModel) -> Registry:
    registered.register(trained, champion=False)
    registered.register(trained, champion=False)
    return registered


def test_canary_selection_is_deterministic_by_lead_id_and_close_to_the_percentage() -> None:
    state = rollout.Challenger("v2", "canary", 25.0)
    ids = [f"lead-{i}" for i in range(20_000)]
    chosen = [state.serves(MODEL, i) for i in ids]
    assert chosen == [state.serves(MODEL, i) for i in ids]
    assert 0.24 < sum(chosen) / len(ids) < 0.26
    # another rollout (challenger version) exposes another slice of leads
    other = [rollout.Challenger("v3", "canary", 25.0).serves(MODEL, i) for i in ids]
    assert 0.1 < sum(a and b for a, b in zip(chosen, other)) / sum(chosen) < 0.4


@pytest.mark.parametrize("mode", ["none", "shadow"])
def test_only_a_canary_ever_serves(mode: str) -> None:
    state = rollout.Challenger("v2", mode, 100.0)  # type: ignore[arg-type]
    assert not any(state.serves(MODEL, f"lead-{i}") for i in range(100))


def test_promote_moves_the_challenger_to_champion_and_records_it(three_versions: Registry) -> None:
    rollout.set_challenger(three_versions, MODEL, "v2", "shadow")
    entry = rollout.promote(three_versions, MODEL)
    assert (entry["event"], entry["version"], entry["previous"]) == ("promoted", "v2", "v1")
    assert three_versions.champion(MODEL) == "v2"
    assert rollout.challenger(three_versions, MODEL) is None
    assert [e["event"] for e in rollout.history(three_versions, MODEL)] == ["challenger_set", "promoted"]


def test_rollback_walks_back_one_promotion_per_call(three_versions: Registry) -> None:
    for version in ("v2", "v3"):
        rollout.set_challenger(three_versions, MODEL, version)
        rollout.promote(three_versions, MODEL)
    assert rollout.rollback(three_versions, MODEL)["version"] == "v2"
    assert rollout.rollback(three_versions, MODEL)["version"] == "v1"
    with pytest.raises(RolloutError, match="nothing to roll back to"):
        rollout.rollback(three_versions, MODEL)
    assert three_versions.champion(MODEL) == "v1"


def test_a_corrupt_version_is_never_made_challenger_nor_champion(three_versions: Registry) -> None:
    onnx = three_versions.root / MODEL / "v2" / ONNX_FILE
    onnx.write_bytes(onnx.read_bytes() + b"\0")
    with pytest.raises(ArtifactIntegrityError):
        rollout.set_challenger(three_versions, MODEL, "v2")
    set_pointers(three_versions, MODEL, challenger="v2", challenger_mode="canary", challenger_percent=5.0)
    with pytest.raises(ArtifactIntegrityError):
        rollout.promote(three_versions, MODEL)
    assert three_versions.champion(MODEL) == "v1"


def test_modes_and_percentages_are_checked(three_versions: Registry) -> None:
    with pytest.raises(RolloutError, match="no challenger"):
        rollout.set_mode(three_versions, MODEL, "shadow")
    with pytest.raises(RolloutError, match="is the champion"):
        rollout.set_challenger(three_versions, MODEL, "v1")
    rollout.set_challenger(three_versions, MODEL, "v3")
    with pytest.raises(RolloutError, match="percent"):
        rollout.set_mode(three_versions, MODEL, "canary", 0)
    with pytest.raises(RolloutError, match="mode must be"):
        rollout.set_mode(three_versions, MODEL, "everything")  # type: ignore[arg-type]
    rollout.set_mode(three_versions, MODEL, "canary", 12.5)
    assert rollout.challenger(three_versions, MODEL).percent == 12.5
