"""What the prediction cache stores: a digest of the encoded features, and a packed result.

The digest is computed from the lead's *encoded* float32 row (after validation, defaults and
one-hot encoding) and the spec's sha256, never from the lead id or its raw JSON: two leads with the
same features share one entry, field order or ``1`` vs ``true`` do not matter, and a spec change
(even one that keeps the same columns) can never read another encoding's entries. The model name
and version are part of the cache key beside the digest (``leadscore/stores/cache.py``).

The packed value is the result without ``lead_id`` and ``latency_ms``, zlib-compressed JSON;
``unpack`` gives it back for the lead that asked.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from typing import Any

import numpy as np

_NOT_CACHED = ("lead_id", "latency_ms", "explanation", "explanation_error", "features")
"""Per request, not per entry: ``features`` is what a conversation derived, which the caller adds
to a hit on a lead given as one (a lead given as features shares the entry, and gets none)."""


def feature_digest(spec_sha256: str, row: np.ndarray) -> str:
    """128-bit BLAKE2b of the spec hash and the row as float32 bytes (``-0.0`` counts as ``0.0``)."""
    canonical = np.ascontiguousarray(row, dtype=np.float32) + np.float32(0.0)  # -0.0 + 0.0 == +0.0
    return hashlib.blake2b(spec_sha256.encode() + canonical.tobytes(), digest_size=16).hexdigest()


def cacheable(result: dict[str, Any], version: str | None = None) -> bool:
    """Whether a result may be cached (under ``version``, when given): model scores only. Rules
    scores are not (the model may be back any moment), nor canary ones (the cache serves the
    published champion only), nor a score of another version than the one being written."""
    return (
        result.get("served_by") == "onnx"
        and "rollout" not in result
        and "error" not in result
        and (version is None or result.get("model_version") == version)
    )


def pack(result: dict[str, Any]) -> bytes:
    kept = {k: v for k, v in result.items() if k not in _NOT_CACHED}
    return zlib.compress(json.dumps(kept, separators=(",", ":")).encode(), 1)


def unpack(blob: bytes, lead_id: str) -> dict[str, Any]:
    """The cached result, for ``lead_id``: the lead that asked, whoever's score filled the entry."""
    return {"lead_id": lead_id, **json.loads(zlib.decompress(blob))}
