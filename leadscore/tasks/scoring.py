"""Scoring tasks: thin JSON adapters over ``ml_core.scoring``."""

from __future__ import annotations

import os
import socket
import sys
import time
from typing import Any

import numpy as np
from celery import shared_task

from leadscore.settings import get_settings
from leadscore.stores.side_effects import ScoreRecord, lead_features
from leadscore.tasks.deep import explain_row
from leadscore.worker import metrics
from leadscore.worker.challenger import after_scores, split_by_scorer
from leadscore.worker.process import model_pool, side_effects
from ml_core.cache_entry import feature_digest
from ml_core.context import encode_with_context
from ml_core.errors import InvalidArgumentError, LeadscoreError
from ml_core.identifiers import DEFAULT_MODEL, model_name
from ml_core.pool import Served
from ml_core.scoring import score_batch, score_encoded

TRAINING_STACK = ("sklearn", "scipy", "pandas", "skl2onnx", "shap", "matplotlib")


# throws=: these are expected outcomes, logged as one line rather than a traceback. Nothing
# autoretries them: bad input stays bad. Strategy: the worker batches this task's messages that
# wait together (leadscore/worker/micro_batch.py); a call it cannot batch runs this function.
@shared_task(
    name="leadscore.score_lead", acks_late=True, throws=(LeadscoreError,), Strategy="leadscore.worker.micro_batch:MicroBatcher"
)
def score_lead(lead: dict[str, Any], model: str = DEFAULT_MODEL, explain: bool = False) -> dict[str, Any]:
    """Score one lead. An invalid lead raises ``InvalidLeadError`` naming the lead and fields.

    ``explain=True`` adds ``explanation`` (top feature contributions, from the native model) or,
    when none can be made, ``explanation_error``. The cache write, events and an escalation
    hand-off happen after the result, on this process's background writer.
    """
    model = model_name(model)
    if not isinstance(explain, bool):
        raise InvalidArgumentError("explain", "expected true or false")
    served = model_pool().get(model)
    (result,) = score_leads(served, [lead])
    if isinstance(result, LeadscoreError):
        raise result
    if explain:
        try:
            result["explanation"] = explain_row(served.spec, result["model_version"], lead)
        except LeadscoreError as exc:
            result["explanation_error"] = str(exc)
    return result


def score_calls(calls: list[tuple[list[Any], dict[str, Any]]]) -> list[dict[str, Any] | LeadscoreError]:
    """``score_lead``'s calls (args, kwargs) scored together, one outcome per call in order: its
    result, or the typed error it alone raises. Leads of one model share one served version."""
    outcomes: list[dict[str, Any] | LeadscoreError | None] = [None] * len(calls)
    by_model: dict[str, list[int]] = {}
    for i, (args, kwargs) in enumerate(calls):
        try:
            model = model_name(kwargs.get("model", args[1] if len(args) > 1 else DEFAULT_MODEL))
        except LeadscoreError as exc:
            outcomes[i] = exc
            continue
        by_model.setdefault(model, []).append(i)
    for model, positions in by_model.items():
        try:
            served = model_pool().get(model)  # once per batch: a hot reload lands between batches
        except LeadscoreError as exc:
            for i in positions:
                outcomes[i] = exc
            continue
        for i, outcome in zip(positions, score_leads(served, [calls[i][0][0] for i in positions])):
            outcomes[i] = outcome
    return [o if o is not None else InvalidArgumentError("lead", "not scored") for o in outcomes]


def score_leads(served: Served, leads: list[Any]) -> list[dict[str, Any] | LeadscoreError]:
    """Score leads with one served version: one vectorized call per scorer (champion, canary), then
    the side effects of all of them queued together. An invalid lead gets its own error."""
    started = time.perf_counter()
    settings = get_settings()
    spec = served.spec
    outcomes: list[dict[str, Any] | LeadscoreError] = [InvalidArgumentError("lead", "not scored")] * len(leads)
    scored: list[dict[str, Any]] = []
    rows: list[np.ndarray] = []
    origin: list[int] = []
    counted: list[dict[str, Any]] = []
    for scorer, positions in split_by_scorer(served, leads):
        encoded, derived = encode_with_context(spec, [leads[i] for i in positions], settings.unknown_fields)
        results = score_encoded(spec, scorer, encoded, settings.default_confidence_threshold, started, derived)
        counted += results
        for error in encoded.errors:
            outcomes[positions[error.index]] = error.to_exception()
        for k, j in enumerate(encoded.index):
            outcomes[positions[j]] = results[j]
            scored.append(results[j])
            rows.append(encoded.X[k])
            origin.append(positions[j])
    metrics.record(spec.name, "score_lead", counted, time.perf_counter() - started)
    if scored:
        X = np.stack(rows)
        # a conversation: what was derived from it
        features = [lead_features(spec, r.get("features", leads[i])) for r, i in zip(scored, origin)]
        after_scores(served, scored, X, features)
        side_effects().submit_many(
            [ScoreRecord("scored", spec.name, feature_digest(spec.sha256, X[k]), dict(r), f) for k, (r, f) in enumerate(zip(scored, features))]
        )
    return outcomes


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
        "metrics_port": metrics.served_port(),
        # what this process carries beyond serving: loaded only where training or explanations ran
        "training_stack": sorted(m for m in TRAINING_STACK if m in sys.modules),
    }
