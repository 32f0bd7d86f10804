"""One chunk of a bulk job: scored with ``score_batch``, recorded in a compact column form.

A recorded chunk is what a bulk job stores per chunk index: the fields every scored lead of the
chunk shares (model, version, scorer) once, the per-lead values as columns, and each invalid
lead with its error. ``chunk_rows`` turns it back into one row per input lead, in input order.
A lead that came as a conversation keeps the features derived from it (``features``: numbers
and booleans only, never its text), so a result file shows why it scored as it did.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

from ml_core.decision import DEFAULT_CONFIDENCE_THRESHOLD
from ml_core.lead_files import LeadChunk
from ml_core.scoring import Scorer, score_batch
from ml_core.spec import ModelSpec

SCORED_COLUMNS = ("lead_id", "score", "probability", "label", "confidence", "escalated")
ROW_FIELDS = ("row", *SCORED_COLUMNS, "model", "model_version", "served_by", "features", "error")
"""The columns of a bulk job's per-lead results (and of the files ``score-file`` writes);
``features`` is set only for a lead given as a conversation."""


def score_chunk(
    spec: ModelSpec,
    scorer: Scorer,
    chunk: LeadChunk,
    *,
    unknown_fields: Literal["reject", "ignore"] = "reject",
    default_confidence_threshold: float = DEFAULT_CONFIDENCE_THRESHOLD,
) -> list[dict[str, Any]]:
    """``score_batch`` over a chunk; rows the reader rejected keep the reader's error."""
    results = score_batch(
        spec, scorer, chunk.leads, unknown_fields=unknown_fields, default_confidence_threshold=default_confidence_threshold
    )
    for pos, error in chunk.rejected.items():
        results[pos] = error
    return results


def pack(results: list[dict[str, Any]], first_row: int, model: str) -> dict[str, Any]:
    """A chunk's results in column form. One ``score_batch`` call serves a whole chunk with one
    scorer, so model version and scorer are shared by its scored leads and stored once. The
    features derived from conversations are a column only in a chunk that had some, so a chunk of
    leads given as features costs what it did."""
    scored: dict[str, list[Any]] = {"pos": [], **{c: [] for c in SCORED_COLUMNS}}
    derived: list[Any] = []
    invalid: list[dict[str, Any]] = []
    common: dict[str, Any] = {"model_version": None, "served_by": None, "fallback_reason": "", "latency_ms": 0.0}
    for pos, result in enumerate(results):
        if "error" in result:
            invalid.append({"pos": pos, "lead_id": result["lead_id"], "problems": result["problems"], "message": result["message"]})
            continue
        scored["pos"].append(pos)
        for column in SCORED_COLUMNS:
            scored[column].append(result[column])
        derived.append(result.get("features"))
        common = {k: result.get(k, "") for k in common}
    if any(f is not None for f in derived):
        scored["features"] = derived
    return {"first_row": first_row, "n": len(results), "model": model, **common, "scored": scored, "invalid": invalid}


def chunk_rows(packed: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """One row per input lead of the chunk, in input order (``row`` is 0-based in the whole input)."""
    first, scored = packed["first_row"], packed["scored"]
    common = {"model": packed["model"], "model_version": packed["model_version"], "served_by": packed["served_by"]}
    invalid = {e["pos"]: e for e in packed["invalid"]}
    derived = scored.get("features")
    at = 0
    for pos in range(packed["n"]):
        error = invalid.get(pos)
        if error is not None:
            yield {
                "row": first + pos,
                "lead_id": error["lead_id"],
                "score": None, "probability": None, "label": None, "confidence": None, "escalated": None,
                "model": packed["model"], "model_version": None, "served_by": None, "features": None,
                "error": error["message"],
                "problems": error["problems"],
            }
            continue
        yield {
            "row": first + pos,
            **{c: scored[c][at] for c in SCORED_COLUMNS},
            **common,
            "features": derived[at] if derived else None,
            "error": None,
        }
        at += 1
