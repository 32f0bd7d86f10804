from __future__ import annotations

import hashlib
import io
import json
import multiprocessing
import os
import pathlib
import pickle

import joblib
import numpy as np
import onnx
import pytest

from ml_core.errors import ArtifactIntegrityError, ModelNotFoundError
from ml_core.identity import identity
from ml_core.registry import CARD_FILE, NATIVE_FILE, ONNX_FILE, Registry
from ml_core.store.schema import blobs, versions
from tests.stores import registry_at

from .helpers import MODEL, copy_spec


def sha256(path: pathlib.Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_register_creates_v1_then_v2_and_moves_the_champion(empty_registry, trained):
    assert empty_registry.versions(MODEL) == []

    assert empty_registry.register(trained) == "v1"
    assert empty_registry.champion(MODEL) == "v1"
    assert empty_registry.register(trained) == "v2"
    assert empty_registry.champion(MODEL) == "v2"

    assert empty_registry.versions(MODEL) == ["v1", "v2"]
    assert empty_registry.load(MODEL).version == "v2"


def test_register_without_champion_keeps_the_pointer(registered, trained):
    assert registered.register(trained, champion=False) == "v2"
    assert registered.champion(MODEL) == "v1"
    registered.set_champion(MODEL, "v2")
    assert registered.champion(MODEL) == "v2"


def test_set_champion_to_an_unknown_version(registered):
    with pytest.raises(ModelNotFoundError):
        registered.set_champion(MODEL, "v7")
    assert registered.champion(MODEL) == "v1"


def test_card_lists_the_sha256_of_every_file(registered, trained, spec):
    version_dir = registered.root / MODEL / "v1"
    card = registered.card(MODEL, "v1")

    on_disk = {p.name for p in version_dir.iterdir()} - {CARD_FILE}
    assert set(card["files"]) == on_disk == {ONNX_FILE, NATIVE_FILE}
    for name, digest in card["files"].items():
        assert digest == sha256(version_dir / name)
    # the trained graph, with its identity in the model's metadata
    served, original = onnx.load_from_string((version_dir / ONNX_FILE).read_bytes()), onnx.load_from_string(trained.onnx)
    assert served.graph == original.graph
    assert {p.key: p.value for p in served.metadata_props} == identity(MODEL, "v1", spec.sha256, spec.columns)
    assert card["version"] == "v1"
    assert card["name"] == MODEL
    assert card["spec_sha256"] == spec.sha256
    assert card["columns"] == list(spec.columns)
    assert card["family"] == trained.family
    assert card["metrics"] == json.loads(json.dumps(trained.metrics))
    assert card["data"] == json.loads(json.dumps(trained.data))
    assert set(card["libraries"]) >= {"scikit-learn", "skl2onnx", "onnxruntime"}


def test_load_returns_verified_onnx_bytes(registered, trained):
    artifact = registered.load(MODEL)
    assert (artifact.name, artifact.version) == (MODEL, "v1")
    assert artifact.onnx == (registered.root / MODEL / "v1" / ONNX_FILE).read_bytes()
    assert onnx.load_from_string(artifact.onnx).graph == onnx.load_from_string(trained.onnx).graph
    assert artifact.card == registered.card(MODEL, "v1")
    assert registered.load(MODEL, "v1").onnx == (registered.root / MODEL / "v1" / ONNX_FILE).read_bytes()


def test_load_native_returns_the_trained_model(registered, trained, train_set):
    native = registered.load_native(MODEL, "v1")
    X = train_set.X[:100]
    np.testing.assert_array_equal(native.predict_proba(X), trained.model.predict_proba(X))


def test_tampered_onnx_is_refused(registered):
    path = registered.root / MODEL / "v1" / ONNX_FILE
    path.write_bytes(path.read_bytes() + b"\0")

    with pytest.raises(ArtifactIntegrityError) as info:
        registered.load(MODEL)

    assert (info.value.model, info.value.version, info.value.filename) == (MODEL, "v1", ONNX_FILE)
    assert ONNX_FILE in str(info.value) and "checksum" in str(info.value)


def test_a_file_missing_from_the_cache_is_fetched_from_the_store_and_verified(registered):
    cached = registered.root / MODEL / "v1" / ONNX_FILE
    expected = sha256(cached)
    cached.unlink()
    assert registered.load(MODEL).version == "v1"
    assert sha256(cached) == expected


def test_a_host_with_only_specs_fetches_the_champion(registered):
    # Given another host: the same store, a models directory holding only the spec
    other = copy_spec(registered.root.parent / "other-host")
    other = Registry(other.root, registered.store)
    # Then it serves the champion it fetched, every file verified
    assert other.load(MODEL).onnx == registered.load(MODEL).onnx
    assert sha256(other.version_dir(MODEL, "v1") / NATIVE_FILE) == sha256(registered.root / MODEL / "v1" / NATIVE_FILE)


@pytest.mark.parametrize("damage", ["tampered", "truncated"])
def test_a_damaged_blob_in_the_store_is_refused_and_never_cached(registered, damage):
    card = registered.card(MODEL, "v1")
    blob = registered.store.blob(card["files"][ONNX_FILE])
    bad = blob[:-1] + bytes([blob[-1] ^ 1]) if damage == "tampered" else blob[: len(blob) // 2]
    _update(registered, blobs.update().where(blobs.c.sha256 == card["files"][ONNX_FILE]).values(data=bad))
    other = Registry(copy_spec(registered.root.parent / f"host-{damage}").root, registered.store)
    with pytest.raises(ArtifactIntegrityError, match="fetched from the store fails its checksum") as info:
        other.load(MODEL)
    assert info.value.filename == ONNX_FILE
    assert not (other.root / MODEL / "v1" / ONNX_FILE).exists()


def test_card_without_checksum_is_refused(registered):
    card = registered.card(MODEL, "v1")
    del card["files"][ONNX_FILE]
    _update(registered, versions.update().where(versions.c.version == "v1").values(card=json.dumps(card)))
    with pytest.raises(ArtifactIntegrityError, match="has no checksum"):
        registered.load(MODEL)


def test_the_cached_card_copy_is_never_what_is_checked(registered):
    (registered.root / MODEL / "v1" / CARD_FILE).write_text("{not json")
    assert registered.load(MODEL).card["version"] == "v1"


def _update(registry: Registry, statement) -> None:
    with registry.store.writing() as conn:
        conn.execute(statement)


class _Trap:
    """Unpickling this object creates ``marker``: proof that the bytes were deserialized."""

    def __init__(self, marker: pathlib.Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


def test_tampered_native_model_is_refused_before_unpickling(registered, tmp_path):
    marker = tmp_path / "unpickled"
    trap = pickle.dumps(_Trap(marker))
    # Given a payload that really does run code when loaded
    joblib.load(io.BytesIO(trap))
    assert marker.exists()
    marker.unlink()

    # When it replaces the registered native model
    (registered.root / MODEL / "v1" / NATIVE_FILE).write_bytes(trap)
    with pytest.raises(ArtifactIntegrityError) as info:
        registered.load_native(MODEL, "v1")

    # Then loading is refused and the payload never ran
    assert info.value.filename == NATIVE_FILE
    assert NATIVE_FILE in str(info.value)
    assert not marker.exists()


def test_unknown_model(registered):
    for call in (
        lambda: registered.load("nope"),
        lambda: registered.load("nope", "v1"),
        lambda: registered.champion("nope"),
        lambda: registered.card("nope", "v1"),
        lambda: registered.load_native("nope", "v1"),
        lambda: registered.spec("nope"),
    ):
        with pytest.raises(ModelNotFoundError) as info:
            call()
        assert info.value.model == "nope"


@pytest.mark.parametrize("version", ["v2", "v0", "latest", "../lead_scorer/v1", "v1/../v1", ""])
def test_unknown_version(registered, version):
    with pytest.raises(ModelNotFoundError) as info:
        registered.load_native(MODEL, version) if version == "" else registered.load(MODEL, version)
    assert info.value.model == MODEL


def test_unknown_version_lists_the_registered_ones(registered):
    with pytest.raises(ModelNotFoundError, match=r"registered versions are \['v1'\]") as info:
        registered.load(MODEL, "v9")
    assert info.value.version == "v9"


def test_no_champion(empty_registry):
    with pytest.raises(ModelNotFoundError, match="no champion") as info:
        empty_registry.load(MODEL)
    assert info.value.model == MODEL


def test_leftover_staging_directory_is_not_a_version(registered, trained):
    # A crash mid-registration leaves a staging directory behind.
    staging = registered.root / MODEL / ".staging-0123abcd"
    staging.mkdir()
    (staging / ONNX_FILE).write_bytes(b"half-written")

    assert registered.versions(MODEL) == ["v1"]
    assert registered.register(trained) == "v2"
    assert registered.versions(MODEL) == ["v1", "v2"]


def test_versions_come_from_the_store_sorted_numerically(empty_registry, trained):
    root = empty_registry.root / MODEL
    for name in ("v2", "v10", "vnext", "backup"):  # directories on disk are a cache, never versions
        (root / name).mkdir()
    assert empty_registry.versions(MODEL) == []
    for _ in range(10):
        empty_registry.register(trained, champion=False)
    assert empty_registry.versions(MODEL) == [f"v{i}" for i in range(1, 11)]


class _Livelock(Exception):  # raised by the bounded rename below if register ever loops again
    pass


def test_file_named_like_the_next_version_does_not_livelock_register(empty_registry, trained, monkeypatch):
    (empty_registry.root / MODEL / "v1").write_text("not a directory")
    real_rename = os.rename
    attempts = []

    def bounded_rename(src, dst):
        attempts.append(dst)
        if len(attempts) > 10:
            raise _Livelock(f"{len(attempts)} renames onto {dst}")
        return real_rename(src, dst)

    monkeypatch.setattr("ml_core.registry.os.rename", bounded_rename)

    try:
        empty_registry.register(trained)
    except OSError:
        pass  # refusing loudly is an acceptable fix
    assert len(attempts) <= 10


RACE_ROUNDS = 4


def _register_in_rounds(root: pathlib.Path, trained, barrier, results) -> None:  # runs in a forked process
    registry = registry_at(root)
    versions = []
    try:
        for _ in range(RACE_ROUNDS):
            barrier.wait(timeout=60)  # both processes list the versions at the same moment, every round
            versions.append(registry.register(trained))
    except BaseException as exc:
        barrier.abort()  # the other process stops waiting for this one
        results.put(f"{type(exc).__name__}: {exc}")
        raise
    results.put(versions)


def test_two_processes_registering_at_once_get_distinct_complete_versions(empty_registry, trained):
    # Given two processes that register versions of one model at the same moments
    context = multiprocessing.get_context("fork")  # the child inherits the trained model, no pickling
    barrier, results = context.Barrier(2), context.Queue()
    racers = [context.Process(target=_register_in_rounds, args=(empty_registry.root, trained, barrier, results)) for _ in range(2)]
    for racer in racers:
        racer.start()
    # When both have finished
    got = [results.get(timeout=120) for _ in racers]
    for racer in racers:
        racer.join(timeout=30)
    # Then every registration completed with its own version, v1 to v8, each whole and verified
    assert [racer.exitcode for racer in racers] == [0, 0], got
    versions = [v for batch in got for v in batch]
    assert sorted(versions, key=lambda v: int(v[1:])) == [f"v{i}" for i in range(1, 2 * RACE_ROUNDS + 1)]
    assert empty_registry.versions(MODEL) == [f"v{i}" for i in range(1, 2 * RACE_ROUNDS + 1)]
    for version in versions:
        assert empty_registry.card(MODEL, version)["version"] == version
        assert empty_registry.load(MODEL, version).version == version  # checksums match the card
    assert empty_registry.champion(MODEL) in versions
    assert not list((empty_registry.root / MODEL).glob(".staging-*"))


def test_two_registries_on_one_directory_see_the_same_versions(registered, trained):
    other = registry_at(registered.root)
    assert other.register(trained) == "v2"
    assert registered.versions(MODEL) == ["v1", "v2"]
    assert registered.champion(MODEL) == "v2"


def test_a_stale_cache_directory_is_brought_in_line_with_the_store(empty_registry, trained):
    # Given a v1 directory left on this host by a store it used before
    stale = empty_registry.root / MODEL / "v1"
    stale.mkdir()
    (stale / ONNX_FILE).write_bytes(b"another store's v1")
    # When this store registers its own v1, it is what loads
    assert empty_registry.register(trained) == "v1"
    assert empty_registry.load(MODEL).version == "v1"
    assert json.loads((stale / CARD_FILE).read_text())["files"] == empty_registry.card(MODEL, "v1")["files"]
