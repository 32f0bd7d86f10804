"""Retraining tasks: one retrain of a model at a time, on the training queue.

A retrain holds the lease ``leadscore:retrain:{<model>}`` (``leadscore/stores/lease.py``, in ``lock_url``'s
Redis), renewed every third of ``retrain_lock_ttl_seconds`` while it runs: a second request finds
it held and returns ``{"status": "skipped", ...}`` at once. A worker killed mid-retrain stops
renewing, and the lease expires ``retrain_lock_ttl_seconds`` later; what it had written is a
staging directory, never a version (``Registry.register`` renames complete versions only).
"""

from __future__ import annotations

import os
import socket
from typing import TYPE_CHECKING, Any

import redis
from celery import current_app, shared_task

from leadscore.settings import Settings, get_settings
from leadscore.stores.event_types import EventType
from leadscore.stores.lease import Lease
from leadscore.stores.state import registry as state_registry
from leadscore.tasks.outcomes import outcome_store
from leadscore.worker.process import publish_model_event as publish
from ml_core.errors import LeadscoreError, RegistrationRefusedError
from ml_core.identifiers import model_name
from ml_core.spec import available_models

if TYPE_CHECKING:
    from ml_core.retrain import RetrainPolicy

RETRAIN_TASK = "leadscore.retrain"


def lease_key(model: str) -> str:
    return f"leadscore:retrain:{{{model}}}"


def policy(settings: Settings) -> RetrainPolicy:
    from ml_core.optimize import Tolerance
    from ml_core.retrain import RetrainPolicy

    return RetrainPolicy(
        min_outcomes=settings.retrain_min_outcomes,
        base_rows=settings.retrain_base_rows,
        base_data=settings.retrain_base_data,
        folds=settings.retrain_folds,
        parity_tolerance=settings.parity_tolerance,
        champion_tolerance=settings.retrain_champion_tolerance,
        optimize=Tolerance(settings.optimize_max_auc_drop, settings.optimize_max_abs_diff, settings.optimize_max_flip_rate, settings.parity_tolerance),
        challenger_mode=settings.challenger_mode,
    )


@shared_task(name=RETRAIN_TASK, acks_late=True, throws=(LeadscoreError,))
def retrain(model: str) -> dict[str, Any]:
    """Retrain ``model`` from its outcomes and register a gated challenger (see ``ml_core.retrain``).

    Returns the gates and what was registered, or ``{"status": "skipped"}`` when a retrain of this
    model is already running; raises ``RegistrationRefusedError`` with every failed gate's numbers.
    """
    model = model_name(model)
    settings = get_settings()
    registry = state_registry(settings)
    registry.spec(model)  # an unknown model fails before taking the lease
    client = redis.Redis.from_url(settings.lock_url, socket_timeout=5, socket_connect_timeout=5)
    lease = Lease(client, lease_key(model), settings.retrain_lock_ttl_seconds, owner=f"{socket.gethostname()}:{os.getpid()}:{retrain.request.id}")
    if not lease.renew():
        return {"status": "skipped", "model": model, "reason": f"a retrain of {model} is already running ({lease.holder()})"}
    lease.keep_renewing()
    try:
        from ml_core.retrain import retrain as retrain_model  # the training stack loads only where a retrain runs

        result = retrain_model(registry, outcome_store(), model, policy(settings))
    except RegistrationRefusedError as exc:
        publish(EventType.MODEL_RETRAIN_REFUSED, model, "", "; ".join(exc.failures))
        raise
    finally:
        lease.release()
        client.close()
    publish(EventType.MODEL_RETRAINED, model, result["version"], f"registered as {result['role']}")
    return result


@shared_task(name="leadscore.retrain_all", acks_late=True, throws=(LeadscoreError,))
def retrain_all() -> dict[str, Any]:
    """Beat's weekly entry: send one ``retrain`` per model (no waiting on them); a model whose
    spec does not load is reported under ``broken`` and the others are still sent."""
    settings = get_settings()
    registry = state_registry(settings)
    sent, broken = [], {}
    for name in available_models(settings.models_dir):
        try:
            registry.spec(name)
        except LeadscoreError as exc:
            broken[name] = f"{exc.__class__.__name__}: {exc}"
            continue
        current_app.send_task(RETRAIN_TASK, args=[name], queue=settings.training_queue)
        sent.append(name)
    return {"sent": sent, "broken": broken}
