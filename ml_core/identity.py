"""Artifact identity: which model, version, spec and columns an ONNX file was registered as.

A checksum in the card proves a file is the one the card names; it cannot tell a substituted
graph from the real one when the card was fixed up too. So ``Registry.register`` writes the
identity into the ONNX model's own ``metadata_props`` before checksumming, and every load checks
it against the version directory it came from, its card and the spec it will be fed by (ONNX
Runtime reads the metadata: serving never imports ``onnx``). A file copied from another model or
version, or a graph without identity (registered before identity existed), is refused with
``ArtifactIntegrityError``: retrain such a model. This is not a signature: whoever can write the
models directory can forge metadata too; it stops mix-ups and substitutions of real artifacts.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from ml_core.errors import ArtifactIntegrityError, capped

MODEL, VERSION, SPEC_SHA256, COLUMNS = "leadscore.model", "leadscore.version", "leadscore.spec_sha256", "leadscore.columns"
KEYS = (MODEL, VERSION, SPEC_SHA256, COLUMNS)
ONNX_FILE = "model.onnx"


def identity(name: str, version: str, spec_sha256: str, columns: Sequence[str]) -> dict[str, str]:
    return {MODEL: name, VERSION: version, SPEC_SHA256: spec_sha256, COLUMNS: json.dumps(list(columns))}


def stamp(onnx_bytes: bytes, ident: Mapping[str, str]) -> bytes:
    """``onnx_bytes`` with ``ident`` in its ``metadata_props`` (replacing any earlier identity)."""
    import onnx  # training-side only: serving reads the metadata through ONNX Runtime

    model = onnx.load_from_string(onnx_bytes)
    kept = [p for p in model.metadata_props if p.key not in KEYS]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    for key, value in ident.items():
        model.metadata_props.add(key=key, value=value)
    data: bytes = model.SerializeToString()
    return data


def check(name: str, version: str, card: Mapping[str, Any], spec_columns: Sequence[str], found: Mapping[str, str]) -> None:
    """Refuse a graph whose identity is not this version's (its card's spec digest and columns)."""
    if not any(key in found for key in KEYS):
        raise ArtifactIntegrityError(
            name, version, ONNX_FILE,
            f"carries no identity (registered before artifact identity, or not by leadscore); retrain it with `leadscore train {name}`",
        )
    expected = identity(name, version, str(card.get("spec_sha256", "")), card.get("columns", []))
    wrong = [key.split(".", 1)[1] for key in KEYS if found.get(key) != expected[key]]
    if wrong:
        says = capped(f"model {found.get(MODEL)!r} version {found.get(VERSION)!r}", 200)
        raise ArtifactIntegrityError(name, version, ONNX_FILE, f"is another artifact (it says {says}; {', '.join(wrong)} differ from this version's)")
    if list(card.get("columns", [])) != list(spec_columns):
        raise ArtifactIntegrityError(
            name, version, ONNX_FILE, f"was trained on other columns than the spec encodes now; retrain it with `leadscore train {name}`"
        )
