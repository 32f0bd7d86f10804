"""Scoring tasks: thin JSON adapters over ``ml_core.scoring``."""

from __future__ import annotations

import os
import socket
import sys
import time
from typing import Any

from celery import shared_task

from leadscore.settings import get_settings
from leadscore.stores.side_effects import ScoreRecord, lead_features
from leadscore.tasks.deep import explain_row
from leadscore.worker import metrics
from leadscore.worker.challenger import after_score, choose_scorer
from leadscore.worker.process import model_pool, side_effects
from ml_core.cache_entry import feature_digest
from ml_core.errors import InvalidArgumentError, InvalidRecordError, LeadscoreError
from ml_core.identifiers import DEFAULT_MODEL, model_name
from ml_core.scoring import score_batch, score_one_encoded

TRAINING_STACK = ("sklearn", "scipy", "pandas", "skl2onnx", "shap", "matplotlib")


# throws=: these are expected outcomes, logged as one line rather than a traceback. Nothing
# autoretries them: bad input stays bad.
@shared_task(name="leadscore.score_lead", acks_late=True, throws=(LeadscoreError,))
def score_lead(lead: dict[str, Any], model: str = DEFAULT_MODEL, explain: bool = False) -> dict[str, Any]:
    """Score one lead. An invalid lead raises ``InvalidLeadError`` naming the lead and fields.

    ``explain=True`` adds ``explanation`` (top feature contributions, from the native model) or,
    when none can be made, ``explanation_error``. The cache write, events and an escalation
    hand-off happen after the result, on this process's background writer.
    """
    model = model_name(model)
    if not isinstance(explain, bool):
        raise InvalidArgumentError("explain", "expected true or false")
    started = time.perf_counter()
    settings = get_settings()
    served = model_pool().get(model)  # held to the end: a hot reload meanwhile never changes this task's version
    scorer = choose_scorer(served, lead)
    try:
        result, row = score_one_encoded(
            served.spec,
            scorer,
            lead,
            unknown_fields=settings.unknown_fields,
            default_confidence_threshold=settings.default_confidence_threshold,
        )
    except InvalidRecordError:
        metrics.record_invalid(model)
        raise
    metrics.record(model, "score_lead", [result], time.perf_counter() - started)
    digest = feature_digest(served.spec.sha256, row)
    features = lead_features(served.spec, result.get("features", lead))  # a conversation: what was derived from it
    after_score(served, result, row, features)
    side_effects().submit(ScoreRecord("scored", model, digest, dict(result), features))
    if explain:
        try:
            result["explanation"] = explain_row(served.spec, result["model_version"], lead)
        except LeadscoreError as exc:
            result["explanation_error"] = str(exc)
    return result


@shared_task(name="leadscore.predict_batch", acks_late=True, throws=(LeadscoreError,))
def predict_batch(leads: list[Any], model: str = DEFAULT_MODEL) -> list[dict[str, Any]]:
    """Score a list in one vectorized call; invalid leads get their own error entry."""
    model = model_name(model)
    started = time.perf_counter()
    settings = get_settings()
    served = model_pool().get(model)
    results = score_batch(
        served.spec,
        served.scorer,
        leads,
        unknown_fields=settings.unknown_fields,
        max_batch_size=settings.max_batch_size,
        default_confidence_threshold=settings.default_confidence_threshold,
    )
    metrics.record(model, "predict_batch", results, time.perf_counter() - started)
    return results


@shared_task(name="leadscore.ping")
def ping() -> dict[str, Any]:
    """A real task through the queue: proves a worker consumes, and reports what it serves."""
    return {
        "pong": True, "hostname": socket.gethostname(), "pid": os.getpid(), "models": model_pool().loaded(),
        # what this process carries beyond serving: loaded only where training or explanations ran
        "training_stack": sorted(m for m in TRAINING_STACK if m in sys.modules),
    }
