"""Turn leads into scored results with whichever scorer serves the model (ONNX or rules)."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any, Literal, Protocol

import numpy as np

from ml_core.context import encode_with_context
from ml_core.decision import DEFAULT_CONFIDENCE_THRESHOLD, Decision
from ml_core.errors import InvalidBatchError
from ml_core.escalation import confidence
from ml_core.features import Encoded
from ml_core.spec import ModelSpec


class Scorer(Protocol):
    """What serves a model's probabilities: a model (``OnnxScorer``), its rules (``RuleScorer``), or
    one that picks between scorers per call (``GuardedScorer``, a canary's challenger).

    ``route`` answers with the probabilities and the scorer that produced them (a model or the rules,
    never a picker), whose ``version``, ``served_by``, ``reason`` and ``decision`` the results carry;
    a model or the rules answers itself. ``decision`` is the version card's (``ml_core.decision``),
    None where the spec decides (the rules, old cards)."""

    @property
    def name(self) -> str: ...
    @property
    def version(self) -> str: ...
    @property
    def served_by(self) -> str: ...
    @property
    def reason(self) -> str: ...
    @property
    def decision(self) -> Decision | None: ...

    def predict_proba(self, X: np.ndarray) -> np.ndarray: ...

    def route(self, X: np.ndarray) -> tuple[np.ndarray, Scorer]: ...


def decision_of(scorer: Scorer | None, spec: ModelSpec, default_confidence_threshold: float = DEFAULT_CONFIDENCE_THRESHOLD) -> Decision:
    """The numbers a scorer's probabilities are decided by: its version card's (an ONNX scorer
    loaded from the registry), else the spec's threshold and fixed cut-offs (the rules, old cards, no model)."""
    own = scorer.decision if scorer is not None else None
    return own if own is not None else Decision.for_spec(spec, default_confidence_threshold)


def score_one(
    spec: ModelSpec,
    scorer: Scorer,
    lead: Any,
    *,
    unknown_fields: Literal["reject", "ignore"] = "reject",
    default_confidence_threshold: float = DEFAULT_CONFIDENCE_THRESHOLD,
) -> dict[str, Any]:
    """Score one lead, or raise ``InvalidLeadError`` naming its id, fields and problems."""
    return score_one_encoded(
        spec, scorer, lead, unknown_fields=unknown_fields, default_confidence_threshold=default_confidence_threshold
    )[0]


def score_one_encoded(
    spec: ModelSpec,
    scorer: Scorer,
    lead: Any,
    *,
    unknown_fields: Literal["reject", "ignore"] = "reject",
    default_confidence_threshold: float = DEFAULT_CONFIDENCE_THRESHOLD,
) -> tuple[dict[str, Any], np.ndarray]:
    """``score_one``, also returning the lead's encoded float32 row (what the prediction cache keys on).

    A lead may come as a conversation (``ml_core.context``): its result then carries the derived
    ``features``, and the row is theirs."""
    started = time.perf_counter()
    encoded, derived = encode_with_context(spec, [lead], unknown_fields)
    if encoded.errors:
        raise encoded.errors[0].to_exception()
    return score_encoded(spec, scorer, encoded, default_confidence_threshold, started, derived)[0], encoded.X[0]


def score_batch(
    spec: ModelSpec,
    scorer: Scorer,
    leads: Sequence[Any],
    *,
    unknown_fields: Literal["reject", "ignore"] = "reject",
    max_batch_size: int | None = None,
    default_confidence_threshold: float = DEFAULT_CONFIDENCE_THRESHOLD,
) -> list[dict[str, Any]]:
    """One result per lead, in input order: a score, or the lead's validation error."""
    started = time.perf_counter()
    if not isinstance(leads, (list, tuple)):
        raise InvalidBatchError("leads must be a JSON array")
    if max_batch_size is not None and len(leads) > max_batch_size:
        raise InvalidBatchError(f"{len(leads)} leads exceed max_batch_size={max_batch_size}; use bulk scoring")
    encoded, derived = encode_with_context(spec, leads, unknown_fields)
    return score_encoded(spec, scorer, encoded, default_confidence_threshold, started, derived)


def score_encoded(
    spec: ModelSpec,
    scorer: Scorer,
    encoded: Encoded,
    default_confidence_threshold: float = DEFAULT_CONFIDENCE_THRESHOLD,
    started: float | None = None,
    derived: Mapping[int, dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """One result per input lead of ``encoded``: a score, or the lead's validation error.
    ``derived``: features derived from a lead's conversation, by input index, echoed as ``features``."""
    started = time.perf_counter() if started is None else started
    results: list[dict[str, Any]] = [{} for _ in range(encoded.n_input)]
    for error in encoded.errors:
        results[error.index] = error.to_json()
    if encoded.ids:
        raw, used = scorer.route(encoded.X)
        p = np.clip(raw, 0.0, 1.0)
        decision = decision_of(used, spec, default_confidence_threshold)
        scores = np.round(p * 100.0, 2)
        labels = decision.labels(scores)
        conf = confidence(p)
        escalated = decision.escalated(p)
        percentiles = decision.percentiles(p)
        latency_ms = round((time.perf_counter() - started) * 1000.0, 3)
        common = {
            "model": spec.name,
            "model_version": used.version,
            "served_by": used.served_by,
            **({"fallback_reason": used.reason} if used.served_by == "fallback" else {}),
            "latency_ms": latency_ms,
        }
        for k, (i, lead_id) in enumerate(zip(encoded.index, encoded.ids)):
            results[i] = {
                "lead_id": lead_id,
                "score": float(scores[k]),
                "probability": round(float(p[k]), 6),
                "label": str(labels[k]),
                "confidence": round(float(conf[k]), 6),
                "escalated": bool(escalated[k]),
                **({"percentile": float(percentiles[k])} if percentiles is not None else {}),
                **common,
            }
            if derived and i in derived:
                results[i]["features"] = derived[i]
    return results
