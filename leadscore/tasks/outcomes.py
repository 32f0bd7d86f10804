"""Outcome tasks: record what happened to a lead, with the features it was scored on.

``record_outcome`` runs on the training queue, on any host: the outcome lands in the state store
(``LEADSCORE_DATABASE_URL``) and is durable when its result comes back. Until then it is a task
message, which ``acks_late`` redelivers if the worker dies; recording twice stores the same row.
While the snapshot Redis or the state store is unreachable the task retries with backoff (12 tries
within about an hour: the message waits in the broker, it is never dropped) rather than store the
label without its features or not at all.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import redis
from celery import shared_task

from leadscore.settings import get_settings
from leadscore.stores.state import state_store
from leadscore.worker.process import snapshots
from ml_core.errors import LeadscoreError, StoreUnavailableError
from ml_core.identifiers import DEFAULT_MODEL, model_name
from ml_core.matching import scores_pairs
from ml_core.outcomes import OutcomeStore, parse_outcome, snapshot_before, subject
from ml_core.spec import load_spec


@cache
def outcome_store() -> OutcomeStore:
    """This process's outcomes in the state store, connected on first use (after the fork)."""
    return OutcomeStore(state_store())


@shared_task(
    name="leadscore.record_outcome", acks_late=True, throws=(LeadscoreError,),
    autoretry_for=(redis.ConnectionError, redis.TimeoutError, StoreUnavailableError), retry_backoff=5, retry_backoff_max=600, max_retries=12,
)
def record_outcome(
    lead_id: str, outcome: bool | int, occurred_at: str, model: str = DEFAULT_MODEL, property_id: str | None = None
) -> dict[str, Any]:
    """Store a lead's outcome (converted or not; for churn, churned or not; for a pair model, given
    ``property_id``: interested in, viewed, a match for that property or not) with the features of
    its last score at or before ``occurred_at`` (ISO 8601 with a timezone). ``with_features`` says
    whether such a score was found; without one the label is kept but not trained on."""
    model = model_name(model)
    pair_model = scores_pairs(load_spec(get_settings().models_dir, model))
    lead_id, label, when = parse_outcome(lead_id, outcome, occurred_at, property_id, pair_model=pair_model)
    chosen = snapshot_before(snapshots().of(model, subject(lead_id, property_id)), when)
    return outcome_store().record(model, lead_id, label, when, chosen, property_id)


@shared_task(name="leadscore.outcome_status", acks_late=True, throws=(LeadscoreError,))
def outcome_status(model: str = DEFAULT_MODEL, lead_id: str | None = None, property_id: str | None = None) -> dict[str, Any]:
    """Counts of recorded outcomes for ``model`` and, given ``lead_id`` (and ``property_id`` for a
    pair model), that row."""
    model = model_name(model)
    store = outcome_store()
    return {"model": model, **store.counts(model), **({"lead": store.get(model, lead_id, property_id)} if lead_id else {})}
