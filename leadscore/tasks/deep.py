"""The deep tier, on its own queue: explanations and escalated leads.

A lead whose confidence (``max(p, 1 - p)``) is below its version's escalation threshold (resolved
at training from the spec's budget or guarantee, ``ml_core.escalation``) is marked
``escalated: true`` and, once per lead, version and features (``leadscore/stores/side_effects.py``), sent to
``deep_score``: it scores the lead again with the native scikit-learn model in full precision
(float64, no ONNX float32 cast), explains it, and hands it to the follow-up task named by
``followup_task`` on ``followup_queue``, where a team plugs in an LLM or a human review. The
built-in follow-up, ``record_handoff``, appends the hand-off to the ``lead.handoff`` stream.

A hand-off carries ids, model, version, scores, the explanation and the lead's spec feature
values, nothing else (for a lead given as a conversation: the features derived from it, each
explained with its context rule; never its text). If no explanation can be made (rules served the lead, or its native model
is refused), the lead is handed off anyway with ``explanation_error``.
"""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np
from celery import current_app, shared_task
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from leadscore.settings import get_settings
from leadscore.stores.event_types import EventType
from leadscore.stores.events import SCHEMA_VERSION, event_fields, stream_key
from leadscore.stores.side_effects import lead_features
from leadscore.worker.process import explainer_pool, model_pool, side_effects
from ml_core.context import encode_with_context, with_rules
from ml_core.errors import LeadscoreError
from ml_core.escalation import confidence
from ml_core.identifiers import DEFAULT_MODEL, model_name
from ml_core.spec import ModelSpec


def explain_row(spec: ModelSpec, version: str, lead: dict[str, Any]) -> dict[str, Any]:
    """The top-k explanation of one lead by ``version``'s native model (raises ``LeadscoreError``)."""
    settings = get_settings()
    encoded, derived = encode_with_context(spec, [lead], settings.unknown_fields, dtype=np.float64)
    if encoded.errors:
        raise encoded.errors[0].to_exception()
    explanation = explainer_pool().get(spec.name, version).explain(encoded.X)[0]
    out = explanation.to_json(spec, encoded.X[0], settings.explain_top_k)
    return with_rules(out) if derived else out


@shared_task(name="leadscore.explain_lead", acks_late=True, throws=(LeadscoreError,))
def explain_lead(lead: dict[str, Any], model: str = DEFAULT_MODEL) -> dict[str, Any]:
    """Explain a lead with the version this worker serves: top feature contributions in log-odds."""
    model = model_name(model)
    served = model_pool().get(model)
    explanation = explain_row(served.spec, served.scorer.version, lead)
    return {"lead_id": str(lead["id"]), "model": model, "model_version": served.scorer.version, "explanation": explanation}


@shared_task(name="leadscore.deep_score", acks_late=True, throws=(LeadscoreError,))
def deep_score(lead: dict[str, Any], fast: dict[str, Any], model: str = DEFAULT_MODEL) -> dict[str, Any]:
    """Rescore an escalated lead in full precision, explain it, and hand it to the follow-up task."""
    model = model_name(model)
    settings = get_settings()
    spec = model_pool().get(model).spec
    handoff: dict[str, Any] = {
        "schema": SCHEMA_VERSION,
        "lead_id": fast["lead_id"],
        "model": model,
        "model_version": fast["model_version"],
        "fast": {k: fast[k] for k in ("score", "probability", "confidence", "label", "served_by")},
        "features": lead_features(spec, lead),
    }
    try:
        explanation = explain_row(spec, fast["model_version"], lead)
        if "features" in fast:  # the lead came as a conversation: ``lead`` holds what was derived from it
            explanation = with_rules(explanation)
        p = explanation["probability"]
        handoff["deep"] = {"probability": p, "confidence": float(confidence(p)), "explanation": explanation}
    except LeadscoreError as exc:
        handoff["deep"] = {"explanation_error": str(exc)}
    current_app.send_task(settings.followup_task, args=[handoff], queue=settings.followup_queue)
    return handoff


# A blip of the events Redis should not lose a hand-off: retried a few times, then it fails loudly.
@shared_task(
    name="leadscore.record_handoff",
    acks_late=True,
    autoretry_for=(RedisConnectionError, RedisTimeoutError),
    retry_backoff=True,
    max_retries=5,
)
def record_handoff(handoff: dict[str, Any]) -> str:
    """The built-in follow-up: append the hand-off to the ``lead.handoff`` stream; returns its entry id."""
    settings = get_settings()
    fast = handoff["fast"]
    fields = {
        **event_fields(EventType.LEAD_HANDOFF, {**fast, "lead_id": handoff["lead_id"], "model": handoff["model"],
                                 "model_version": handoff["model_version"], "escalated": True}, time.time()),
        "handoff": json.dumps(handoff, separators=(",", ":")),
    }
    entry_id = side_effects().events.store.client.xadd(
        stream_key(EventType.LEAD_HANDOFF), fields, maxlen=settings.events_maxlen, approximate=True  # type: ignore[arg-type]
    )
    return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
