"""Artifact identity: a graph is served only as the model, version, spec and columns it was registered as;
symlinks out of the models directory are refused; a served file changed on disk is noticed by every pool."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from ml_core import rollout
from ml_core.errors import ArtifactIntegrityError, ModelNotFoundError
from ml_core.pool import ModelPool
from ml_core.registry import ONNX_FILE, Registry
from ml_core.store.schema import blobs
from ml_core.training import TrainedModel
from tests.stores import fix_up, set_pointers

from .helpers import MODEL, copy_spec


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def substitute(registry: Registry, version: str, graph: bytes) -> None:
    """What an attacker or a bad copy does: another valid graph in place, the card fixed up to match."""
    fix_up(registry, version, ONNX_FILE, graph)


@pytest.fixture
def two_versions(registered: Registry, trained: TrainedModel) -> Registry:
    registered.register(trained, champion=False)
    return registered


def test_another_versions_graph_with_a_fixed_up_card_is_refused(two_versions: Registry, caplog) -> None:
    # Given v2's ONNX replaced by v1's (same width, valid, checksum fixed in the card)
    substitute(two_versions, "v2", (two_versions.root / MODEL / "v1" / ONNX_FILE).read_bytes())

    # When a worker loads v2, then Then it is refused as another artifact
    with (
        caplog.at_level(logging.CRITICAL, logger="ml_core.pool"),
        pytest.raises(ArtifactIntegrityError, match="is another artifact .*version 'v1'.*version differ"),
    ):
        ModelPool(two_versions, clock=Clock())._open(MODEL, "v2")


def test_a_graph_without_identity_is_refused_and_the_old_version_keeps_serving(two_versions: Registry, trained: TrainedModel, caplog) -> None:
    # Given a worker serving v1, and v2 replaced by a bare graph of the same width (no identity)
    clock, changes = Clock(), []
    pool = ModelPool(two_versions, clock=clock, reload_check_seconds=1.0, on_change=lambda *c: changes.append(c))
    served = pool.get(MODEL)
    substitute(two_versions, "v2", trained.onnx)

    # When v2 is made champion
    two_versions.set_champion(MODEL, "v2")
    clock.now += 1
    with caplog.at_level(logging.CRITICAL, logger="ml_core.pool"):
        now = pool.get(MODEL)

    # Then v1 keeps serving and the refusal is reported, telling what to do
    assert now is served and now.scorer.served_by == "onnx" and now.scorer.version == "v1"
    assert [c[1:3] for c in changes] == [("reload_failed", "v2")]
    assert "carries no identity" in changes[0][3] and f"leadscore train {MODEL}" in changes[0][3]


def test_a_graph_trained_on_other_columns_than_the_spec_is_refused(registered: Registry, caplog) -> None:
    spec_file = registered.root / MODEL / "spec.toml"
    spec_file.write_text(spec_file.read_text().replace("questions_asked", "questions_posed"))
    with caplog.at_level(logging.CRITICAL, logger="ml_core.pool"):
        served = ModelPool(registered, clock=Clock()).get(MODEL)
    assert served.scorer.served_by == "fallback" and "other columns than the spec" in served.scorer.reason


@pytest.mark.parametrize("link", ["file", "version", "spec"])
def test_symlinks_out_of_the_models_directory_are_refused(registered: Registry, tmp_path: Path, link: str, caplog) -> None:
    # Given a registered file, version directory or spec moved outside the models directory and
    # linked back in (the copy is byte-identical: checksums and identity would match)
    version_dir, outside = registered.root / MODEL / "v1", tmp_path / "outside"
    outside.mkdir()
    if link == "file":
        target = outside / ONNX_FILE
        shutil.move(version_dir / ONNX_FILE, target)
        (version_dir / ONNX_FILE).symlink_to(target)
    elif link == "version":
        shutil.move(version_dir, outside / "v1")
        version_dir.symlink_to(outside / "v1")
    else:
        shutil.move(registered.root / MODEL / "spec.toml", outside / "spec.toml")
        (registered.root / MODEL / "spec.toml").symlink_to(outside / "spec.toml")

    # When the registry loads it, Then it is refused, never read through the link
    with pytest.raises((ArtifactIntegrityError, ModelNotFoundError), match="link out of the models directory"):
        registered.load(MODEL)


def test_a_link_inside_the_models_directory_is_followed(registered: Registry) -> None:
    version_dir = registered.root / MODEL / "v1"
    shutil.move(version_dir / ONNX_FILE, registered.root / "kept.onnx")
    (version_dir / ONNX_FILE).symlink_to(registered.root / "kept.onnx")
    assert registered.load(MODEL, "v1").version == "v1"


def test_a_served_file_tampered_on_disk_is_noticed_by_every_pool_within_the_check(registered: Registry, caplog) -> None:
    # Given a batch worker's pool that loaded the model before the file was tampered with
    clock, changes = Clock(), []
    batch = ModelPool(registered, clock=clock, reload_check_seconds=2.0, on_change=lambda *c: changes.append(c))
    assert batch.get(MODEL).scorer.served_by == "onnx"
    path = registered.root / MODEL / "v1" / ONNX_FILE
    path.write_bytes(path.read_bytes() + b"\0")

    # When a scoring worker (re)starts and loads it, and the batch worker's reload check comes
    with caplog.at_level(logging.CRITICAL, logger="ml_core.pool"):
        scoring = ModelPool(registered, clock=clock).get(MODEL)
        clock.now += 2
        batch_served = batch.get(MODEL)

    # Then both serve the rules, for the same reason, and the batch worker reported it
    X = np.zeros((1, len(scoring.spec.columns)), dtype=np.float32)
    assert scoring.scorer.route(X)[1].served_by == batch_served.scorer.route(X)[1].served_by == "fallback"
    assert "checksum" in scoring.scorer.reason and "checksum" in batch_served.scorer.reason
    assert [c[1:3] for c in changes] == [("reload_failed", "v1")] and "changed on disk" in changes[0][3]


def test_a_served_file_rewritten_with_the_same_bytes_keeps_serving(registered: Registry) -> None:
    clock = Clock()
    pool = ModelPool(registered, clock=clock, reload_check_seconds=2.0)
    pool.get(MODEL)
    path = registered.root / MODEL / "v1" / ONNX_FILE
    blob = path.read_bytes()
    path.unlink()
    path.write_bytes(blob)  # a new inode, the same verified bytes
    clock.now += 2
    assert pool.get(MODEL).scorer.served_by == "onnx"


def test_a_tampered_challenger_file_is_dropped_and_the_champion_serves(two_versions: Registry, caplog) -> None:
    clock, changes = Clock(), []
    rollout.set_challenger(two_versions, MODEL, "v2", "shadow")
    pool = ModelPool(two_versions, clock=clock, reload_check_seconds=1.0, on_change=lambda *c: changes.append(c))
    assert pool.get(MODEL).shadow is not None
    path = two_versions.root / MODEL / "v2" / ONNX_FILE
    path.write_bytes(path.read_bytes()[:-3])
    clock.now += 1
    with caplog.at_level(logging.CRITICAL, logger="ml_core.pool"):
        served = pool.get(MODEL)
    assert served.shadow is None and served.scorer.served_by == "onnx"
    assert [c[1:3] for c in changes] == [("challenger_failed", "v2")]


@pytest.mark.parametrize("damage", ["tampered", "truncated"])
def test_a_host_that_fetches_a_damaged_new_champion_keeps_serving_the_old_one(two_versions: Registry, damage: str, caplog) -> None:
    # Given another host (same store, only the spec on disk) serving v1
    host = Registry(copy_spec(two_versions.root.parent / f"host-{damage}").root, two_versions.store)
    clock, changes = Clock(), []
    pool = ModelPool(host, clock=clock, reload_check_seconds=2.0, on_change=lambda *c: changes.append(c))
    assert pool.get(MODEL).scorer.version == "v1"
    # When v2 becomes champion but its ONNX blob in the store is damaged (in the store or on the way)
    digest = two_versions.card(MODEL, "v2")["files"][ONNX_FILE]
    blob = two_versions.store.blob(digest)
    bad = blob[:-1] + bytes([blob[-1] ^ 1]) if damage == "tampered" else blob[: len(blob) // 2]
    with two_versions.store.writing() as conn:
        conn.execute(blobs.update().where(blobs.c.sha256 == digest).values(data=bad))
    set_pointers(two_versions, MODEL, champion="v2")
    with caplog.at_level(logging.CRITICAL, logger="ml_core.pool"):
        clock.now += 2
        served = pool.get(MODEL)
    # Then the host refused v2, cached none of it, said so, and serves v1 by its model still
    assert (served.scorer.version, served.scorer.served_by) == ("v1", "onnx")
    assert not (host.root / MODEL / "v2" / ONNX_FILE).exists()
    assert [c[1:3] for c in changes] == [("reload_failed", "v2")]
