"""Versioned, checksummed model artifacts on disk.

    models/<name>/spec.toml          the spec (committed)
    models/<name>/v<N>/model.onnx    what workers serve
    models/<name>/v<N>/model.joblib  the native model, kept for explanations
    models/<name>/v<N>/card.json     features, metrics, sha256 of every file, versions, data fingerprint
    models/<name>/champion           the version served by default

A version appears by renaming a complete staging directory, so a crash mid-write leaves no
half-registered version. Every file is checked against its card before it is deserialized.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import platform
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import joblib

from ml_core.errors import ArtifactIntegrityError, ModelNotFoundError
from ml_core.spec import ModelSpec, load_spec

if TYPE_CHECKING:  # serving processes load models without importing scikit-learn's training stack
    from ml_core.training import TrainedModel

ONNX_FILE, NATIVE_FILE, CARD_FILE, CHAMPION_FILE = "model.onnx", "model.joblib", "card.json", "champion"
_VERSION = re.compile(r"^v(\d+)$")
_LIBRARIES = ("scikit-learn", "skl2onnx", "onnx", "onnxruntime", "numpy")


@dataclass(frozen=True)
class Artifact:
    name: str
    version: str
    card: dict[str, Any]
    onnx: bytes


class Registry:
    def __init__(self, models_dir: Path) -> None:
        self.root = Path(models_dir)

    def spec(self, name: str) -> ModelSpec:
        return load_spec(self.root, name)

    def versions(self, name: str) -> list[str]:
        found = [p.name for p in (self.root / name).glob("v*") if p.is_dir() and _VERSION.match(p.name)]
        return sorted(found, key=lambda v: int(v[1:]))

    def champion(self, name: str) -> str:
        self.spec(name)  # an unknown model raises here, before "no champion"
        try:
            version = (self.root / name / CHAMPION_FILE).read_text().strip()
        except FileNotFoundError:
            raise ModelNotFoundError(name, problem="no champion registered; run `leadscore train`") from None
        return version

    def card(self, name: str, version: str) -> dict[str, Any]:
        path = self._version_dir(name, version) / CARD_FILE
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ArtifactIntegrityError(name, version, CARD_FILE, f"unreadable ({exc.__class__.__name__})") from None

    def register(
        self,
        trained: TrainedModel,
        *,
        champion: bool = True,
        extra_files: Mapping[str, bytes] | None = None,
        card_extra: Mapping[str, Any] | None = None,
    ) -> str:
        """Write a complete version and rename it into place. ``extra_files`` (reports, the drift
        profile, a full-size artifact kept beside an optimized one) are checksummed like the rest."""
        name = trained.spec.name
        files = {ONNX_FILE: trained.onnx, NATIVE_FILE: _dump(trained.model), **(extra_files or {})}
        card = {
            "name": name,
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "spec_sha256": trained.spec.sha256,
            "family": trained.family,
            "features": [{"name": f.name, "kind": f.kind} for f in trained.spec.features],
            "columns": list(trained.spec.columns),
            "metrics": trained.metrics,
            "cross_validation": trained.cross_validation,
            "selection": trained.selection,
            "data": trained.data,
            "files": {fname: hashlib.sha256(blob).hexdigest() for fname, blob in files.items()},
            "libraries": {lib: metadata.version(lib) for lib in _LIBRARIES},
            "python": platform.python_version(),
            **(card_extra or {}),
        }
        staging = self.root / name / f".staging-{uuid.uuid4().hex}"
        staging.mkdir(parents=True)
        for fname, blob in files.items():
            (staging / fname).write_bytes(blob)
        while True:
            taken = [int(m.group(1)) for p in (self.root / name).iterdir() if (m := _VERSION.match(p.name))]
            version = f"v{max(taken, default=0) + 1}"
            card["version"] = version
            (staging / CARD_FILE).write_text(json.dumps(card, indent=2))
            try:
                os.rename(staging, self.root / name / version)
                break
            except OSError:
                if not (self.root / name / version).exists():
                    raise  # a real I/O failure, not a concurrent registration that took the name
        if champion:
            self.set_champion(name, version)
        return version

    def set_champion(self, name: str, version: str) -> None:
        self._version_dir(name, version)
        atomic_write(self.root / name / CHAMPION_FILE, version + "\n")

    def load(self, name: str, version: str | None = None) -> Artifact:
        """The ONNX model of a version (the champion by default), verified against its card."""
        version = version or self.champion(name)
        card = self.card(name, version)
        return Artifact(name, version, card, self._verified(name, version, card, ONNX_FILE))

    def load_native(self, name: str, version: str) -> Any:
        """The native sklearn model. Unpickling runs code, so the bytes are verified first."""
        blob = self._verified(name, version, self.card(name, version), NATIVE_FILE)
        return joblib.load(io.BytesIO(blob))

    def verified_file(self, name: str, version: str, fname: str) -> bytes:
        """Any file of a version, checked against its card's checksum."""
        return self._verified(name, version, self.card(name, version), fname)

    def version_dir(self, name: str, version: str) -> Path:
        return self._version_dir(name, version)

    def _version_dir(self, name: str, version: str) -> Path:
        path = self.root / name / version
        if not _VERSION.match(version) or not path.is_dir():
            self.spec(name)
            raise ModelNotFoundError(name, version, f"registered versions are {self.versions(name)}")
        return path

    def _verified(self, name: str, version: str, card: dict[str, Any], fname: str) -> bytes:
        expected = card.get("files", {}).get(fname)
        if not expected:
            raise ArtifactIntegrityError(name, version, fname, "has no checksum in the card")
        try:
            blob = (self._version_dir(name, version) / fname).read_bytes()
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
    joblib.dump(model, buffer)
    return buffer.getvalue()
