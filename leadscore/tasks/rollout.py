"""Rollout tasks: challenger modes, promotion and rollback, on the training queue.

Each changes the pointers in the state store (``ml_core.rollout``), appends to the model's
history and publishes an event; running workers pick the change up within
``reload_check_seconds`` (``ml_core.pool``).
"""

from __future__ import annotations

from typing import Any

from celery import shared_task

from leadscore.stores.event_types import EventType
from leadscore.stores.state import registry
from leadscore.worker.process import publish_model_event as publish
from ml_core import rollout
from ml_core.errors import InvalidArgumentError, LeadscoreError
from ml_core.identifiers import model_name
from ml_core.registry import Registry


def _registry() -> Registry:
    return registry()


@shared_task(name="leadscore.set_challenger", acks_late=True, throws=(LeadscoreError,))
def set_challenger(model: str, version: str, mode: str = "none", percent: float = 0.0) -> dict[str, Any]:
    """Make any registered version (a rolled-back one, say) the challenger, in ``mode``."""
    model = model_name(model)
    if not isinstance(version, str):
        raise InvalidArgumentError("version", "expected a version such as 'v2'")
    entry = rollout.set_challenger(_registry(), model, version, mode, percent)  # type: ignore[arg-type]
    publish(EventType.MODEL_ROLLOUT, model, version, f"challenger, {mode}")
    return entry


@shared_task(name="leadscore.set_rollout", acks_late=True, throws=(LeadscoreError,))
def set_rollout(model: str, mode: str, percent: float = 0.0) -> dict[str, Any]:
    """Put the challenger in ``shadow``, ``canary`` (``percent`` of leads) or ``none``."""
    model = model_name(model)
    entry = rollout.set_mode(_registry(), model, mode, percent)  # type: ignore[arg-type]
    publish(EventType.MODEL_ROLLOUT, model, entry["version"], f"{mode} {entry['percent']:g}%" if mode == "canary" else mode)
    return entry


@shared_task(name="leadscore.promote", acks_late=True, throws=(LeadscoreError,))
def promote(model: str) -> dict[str, Any]:
    """The challenger becomes champion (refused if its files fail their checksums or do not load)."""
    model = model_name(model)
    entry = rollout.promote(_registry(), model)
    publish(EventType.MODEL_PROMOTED, model, entry["version"], f"previous champion {entry['previous']}")
    return entry


@shared_task(name="leadscore.rollback", acks_late=True, throws=(LeadscoreError,))
def rollback(model: str) -> dict[str, Any]:
    """Return to the champion before the current one."""
    model = model_name(model)
    entry = rollout.rollback(_registry(), model)
    publish(EventType.MODEL_ROLLED_BACK, model, entry["version"], f"from {entry['previous']}")
    return entry
