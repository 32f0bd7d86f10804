"""Versioned, checksummed model artifacts: the state store holds them, each host caches them on disk.

    store (``ml_core.store``)        every version's card and files (by sha256), the champion pointer
    models/<name>/spec.toml          the spec (committed code: every host has it)
    models/<name>/v<N>/<file>        this host's cache of a version's files, fetched on first use
    models/<name>/v<N>/card.json     a copy of the card, for people (the store's card is the one checked)

A version is registered in one transaction (card and files together), so a crash mid-write leaves
no half-registered version; the cache directory appears by renaming a complete staging directory.
Every file is checked against the store's card before it is deserialized: a blob fetched from the
store is verified before it is written to the cache, and the cached file again each time it is
read, so a tampered or truncated file, local or fetched, is refused. The ONNX file also carries its
own identity (``ml_core.identity``), checked when it is served. Every path is resolved first: a
symlink that leads out of the models directory is refused.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import platform
import re
import shutil
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ml_core import context
from ml_core.errors import ArtifactIntegrityError, ModelNotFoundError
from ml_core.identifiers import model_name
from ml_core.identity import ONNX_FILE, identity, stamp
from ml_core.spec import ModelSpec, load_spec, spec_path
from ml_core.store.state import StateStore
from ml_core.timestamps import utc_iso

if TYPE_CHECKING:  # serving processes load models without importing scikit-learn's training stack
    from ml_core.training import TrainedModel

NATIVE_FILE, CARD_FILE = "model.joblib", "card.json"
_VERSION = re.compile(r"^v(\d+)$")
_LIBRARIES = ("scikit-learn", "skl2onnx", "onnx", "onnxruntime", "numpy")


@dataclass(frozen=True)
class Artifact:
    name: str
    version: str
    card: dict[str, Any]
    onnx: bytes
    file_id: tuple[int, ...] | None = None
    """Inode, size and mtime_ns of the ONNX file as read (see ``file_id``)."""


class Registry:
    def __init__(self, models_dir: Path, store: StateStore) -> None:
        self.root = Path(models_dir)
        self.store = store

    def model_dir(self, name: str) -> Path:
        """A model's directory; the name is checked first, so a caller's name is never a path."""
        return self.root / model_name(name)

    def spec(self, name: str) -> ModelSpec:
        path = spec_path(self.root, name)
        if path.exists() and not self._inside(path):
            raise ModelNotFoundError(name, problem="its spec is a link out of the models directory; refused")
        return load_spec(self.root, name)

    def file_id(self, name: str, version: str, fname: str = ONNX_FILE) -> tuple[int, ...] | None:
        """Inode, size and mtime of a registered file, or None: a cheap way to notice it changed."""
        try:
            st = os.stat(self.model_dir(name) / version / fname)
        except OSError:
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    def versions(self, name: str) -> list[str]:
        return self.store.versions(model_name(name))

    def champion(self, name: str) -> str:
        self.spec(name)  # an unknown model raises here, before "no champion"
        version = self.store.pointers(name).champion
        if version is None:
            raise ModelNotFoundError(name, problem="no champion registered; run `leadscore train`")
        return version

    def card(self, name: str, version: str) -> dict[str, Any]:
        card = self.store.card(model_name(name), version) if _VERSION.match(version) else None
        if card is None:
            self.spec(name)
            raise ModelNotFoundError(name, version, f"registered versions are {self.versions(name)}")
        return card

    def register(
        self,
        trained: TrainedModel,
        *,
        champion: bool = True,
        extra_files: Mapping[str, bytes] | Callable[[str], Mapping[str, bytes]] | None = None,
        card_extra: Mapping[str, Any] | None = None,
    ) -> str:
        """Write a complete version and rename it into place. ``extra_files`` (reports, the drift
        profile, a full-size artifact kept beside an optimized one) are checksummed like the rest."""
        name = trained.spec.name
        native = _dump(trained.model)
        card: dict[str, Any] = {
            "name": name,
            "created_at": utc_iso(),
            "spec_sha256": trained.spec.sha256,
            "family": trained.family,
            "features": [{"name": f.name, "kind": f.kind} for f in trained.spec.features],
            "columns": list(trained.spec.columns),
            "metrics": trained.metrics,
            "cross_validation": trained.cross_validation,
            "selection": trained.selection,
            "data": trained.data,
            "libraries": {lib: metadata.version(lib) for lib in _LIBRARIES},
            "python": platform.python_version(),
            **context.card_entry(trained.spec),
            **(card_extra or {}),
        }
        while True:
            # The version is in the ONNX bytes (their identity), so it is picked before anything is
            # checksummed; a concurrent registration that takes it first sends us round again.
            taken = [int(v[1:]) for v in self.store.versions(name)]
            version = f"v{max(taken, default=0) + 1}"
            onnx = stamp(trained.onnx, identity(name, version, trained.spec.sha256, trained.spec.columns))
            extra = extra_files(version) if callable(extra_files) else extra_files  # a report names its version
            files = {ONNX_FILE: onnx, NATIVE_FILE: native, **(extra or {})}
            card["version"] = version
            card["files"] = {fname: hashlib.sha256(blob).hexdigest() for fname, blob in files.items()}
            if self.store.add_version(name, version, card, files):
                break
        self._cache(name, version, card, files)
        if champion:
            self.set_champion(name, version)
        return version

    def set_champion(self, name: str, version: str) -> None:
        """Point the champion at ``version`` (no history entry: ``ml_core.rollout`` writes those)."""
        self.card(name, version)
        self.store.set_champion(name, version)

    def load(self, name: str, version: str | None = None) -> Artifact:
        """The ONNX model of a version (the champion by default), verified against its card."""
        version = version or self.champion(name)
        card = self.card(name, version)
        self._cached(name, version, card, ONNX_FILE)
        file_id = self.file_id(name, version)  # before reading: a change after it shows as a new id
        return Artifact(name, version, card, self._verified(name, version, card, ONNX_FILE), file_id)

    def load_native(self, name: str, version: str) -> Any:
        """The native sklearn model. Unpickling runs code, so the bytes are verified first."""
        blob = self._verified(name, version, self.card(name, version), NATIVE_FILE)
        import joblib  # explanations only: serving and clients never unpickle

        return joblib.load(io.BytesIO(blob))

    def verified_file(self, name: str, version: str, fname: str) -> bytes:
        """Any file of a version, checked against its card's checksum."""
        return self._verified(name, version, self.card(name, version), fname)

    def version_dir(self, name: str, version: str) -> Path:
        """This host's cache directory of a version, every file fetched and verified."""
        card = self.card(name, version)
        for fname in card.get("files", {}):
            self._verified(name, version, card, fname)
        return self._version_dir(name, version)

    def _version_dir(self, name: str, version: str) -> Path:
        path = self.model_dir(name) / version
        if path.exists() and not self._inside(path):
            raise ArtifactIntegrityError(name, version, version, "is a link out of the models directory")
        return path

    def _cache(self, name: str, version: str, card: Mapping[str, Any], files: Mapping[str, bytes]) -> None:
        """Write a version's files to this host's cache: a complete staging directory, renamed. A
        directory already there (left by a store this host used before) is brought in line with the
        store's card, file by file: the store decides what a version is."""
        path = self._version_dir(name, version)
        if path.is_dir():
            for fname, blob in files.items():
                target = path / fname
                if not target.is_file() or hashlib.sha256(target.read_bytes()).digest() != hashlib.sha256(blob).digest():
                    tmp = path / f".{fname}.{uuid.uuid4().hex}.tmp"
                    tmp.write_bytes(blob)
                    os.replace(tmp, target)
            atomic_write(path / CARD_FILE, json.dumps(card, indent=2))
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = path.parent / f".staging-{uuid.uuid4().hex}"
        staging.mkdir()
        for fname, blob in files.items():
            (staging / fname).write_bytes(blob)
        (staging / CARD_FILE).write_text(json.dumps(card, indent=2))
        try:
            os.rename(staging, path)
        except OSError:  # another process of this host cached it first
            shutil.rmtree(staging, ignore_errors=True)

    def _cached(self, name: str, version: str, card: dict[str, Any], fname: str) -> Path:
        """The cached file's path, fetched from the store first when this host has not got it."""
        expected = card.get("files", {}).get(fname)
        if not expected or "/" in fname or fname.startswith("."):
            raise ArtifactIntegrityError(name, version, fname, "has no checksum in the card")
        path = self._version_dir(name, version) / fname
        if path.exists() and not self._inside(path):
            raise ArtifactIntegrityError(name, version, fname, "is a link out of the models directory")
        if not path.exists() and not path.is_symlink():
            self._fetch(name, version, fname, expected)
        return path

    def _fetch(self, name: str, version: str, fname: str, expected: str) -> None:
        """One file from the store into the cache, verified before it is written (atomic rename)."""
        blob = self.store.blob(expected)
        if blob is None:
            raise ArtifactIntegrityError(name, version, fname, "is missing (neither cached on this host nor in the store)")
        actual = hashlib.sha256(blob).hexdigest()
        if actual != expected:
            raise ArtifactIntegrityError(
                name, version, fname, f"fetched from the store fails its checksum (sha256 {actual[:12]}..., card says {expected[:12]}...)"
            )
        path = self._version_dir(name, version)
        path.mkdir(parents=True, exist_ok=True)
        if not (path / CARD_FILE).exists():
            atomic_write(path / CARD_FILE, json.dumps(self.card(name, version), indent=2))
        tmp = path / f".{fname}.{uuid.uuid4().hex}.tmp"
        tmp.write_bytes(blob)
        os.replace(tmp, path / fname)

    def _inside(self, path: Path) -> bool:
        """Whether ``path``, every symlink followed, is still under the models directory."""
        return path.resolve().is_relative_to(self.root.resolve())

    def _verified(self, name: str, version: str, card: dict[str, Any], fname: str) -> bytes:
        expected = card.get("files", {}).get(fname)
        if not expected:
            raise ArtifactIntegrityError(name, version, fname, "has no checksum in the card")
        path = self._cached(name, version, card, fname)
        try:
            blob = path.read_bytes()
        except FileNotFoundError:
            raise ArtifactIntegrityError(name, version, fname, "is missing") from None
        actual = hashlib.sha256(blob).hexdigest()
        if actual != expected:
            raise ArtifactIntegrityError(
                name, version, fname, f"fails its checksum (sha256 {actual[:12]}..., card says {expected[:12]}...)"
            )
        return blob


def atomic_write(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` in one rename, durably: readers see the old or the new file."""
    tmp = path.with_suffix(f".{uuid.uuid4().hex}.tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _dump(model: Any) -> bytes:
    buffer = io.BytesIO()
    import joblib

    joblib.dump(model, buffer)
    return buffer.getvalue()
