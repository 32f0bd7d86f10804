"""Per-process model lifecycle for workers.

Each worker child owns one ``ModelPool``. It is created after the fork (``worker_process_init``)
and warmed in a background thread, so the init hook returns at once and a slow model load can
never trip ``worker_proc_alive_timeout``. Tasks that arrive before warm-up ends wait for the
model they need, not for all of them.

A child also owns, created on first use: its ``SideEffects`` (cache writes, events and hand-offs
on a background thread, flushed when the child shuts down) and its ``ExplainerPool`` (native
models, loaded only by the tasks that explain). Once a model is warm, the child publishes the
version it serves to the cache; if that replaced another version, it asks for a prewarm so hot
leads are cached for the new version before clients ask.

Hot reload (``ml_core.pool``): a child notices a promotion or rollback on the next task at most
``reload_check_seconds`` after it, loads the new champion, publishes the version it serves and
asks for a prewarm, exactly as at warm-up. A version that fails to load raises a
``model.reload_failed`` alert event while the old version keeps serving.
"""

from __future__ import annotations

import logging
import os
import threading
from functools import cache

from celery import current_app
from celery.signals import worker_init, worker_process_init, worker_process_shutdown

from leadscore.settings import get_settings
from leadscore.stores.event_types import EventType
from leadscore.stores.side_effects import SideEffects
from leadscore.stores.state import registry
from leadscore.worker import broker_patches, metrics
from leadscore.worker.snapshots import Snapshots
from ml_core.errors import LeadscoreError
from ml_core.explain import ExplainerPool
from ml_core.pool import ModelPool
from ml_core.timestamps import utc_iso

log = logging.getLogger(__name__)

PREWARM_TASK = "leadscore.prewarm_cache"
BREAKER_EVENT = EventType.MODEL_BREAKER
MODEL_EVENTS = {"reloaded": EventType.MODEL_RELOADED, "reload_failed": EventType.MODEL_RELOAD_FAILED,
                "challenger_loaded": EventType.MODEL_CHALLENGER_LOADED, "challenger_failed": EventType.MODEL_RELOAD_FAILED}

_pool: ModelPool | None = None
_pool_lock = threading.Lock()


def model_pool() -> ModelPool:
    """This process's pool, created on first use (solo pools never fire ``worker_process_init``)."""
    global _pool
    if _pool is None:
        with _pool_lock:
            if _pool is None:
                settings = get_settings()
                _pool = ModelPool(
                    registry(settings),
                    failure_threshold=settings.breaker_failure_threshold,
                    reset_after_seconds=settings.breaker_reset_seconds,
                    on_transition=_breaker_event,
                    reload_check_seconds=settings.reload_check_seconds,
                    on_change=_model_changed,
                )
    return _pool


def _model_changed(model: str, what: str, version: str, detail: str) -> None:
    """A reload seen by this child: an event (an alert when it failed); a new champion is announced."""
    publish_model_event(MODEL_EVENTS[what], model, version, f"{what} in pid {os.getpid()}: {detail}")
    if what == "reloaded":
        announce_served_version(model)


def publish_model_event(event: EventType, model: str, version: str, detail: str) -> bool:
    """A model lifecycle event (``model.promoted``, ``model.reload_failed``, ...), published at once:
    they are rare. Flat string fields, schema 1: ``schema, type, model, version, detail, ts``."""
    fields = {
        "schema": "1", "type": event, "model": model, "version": version, "detail": detail[:2000],
        "ts": utc_iso(),
    }
    return side_effects().events.publish([(event, fields)])


def _breaker_event(model: str, old: str, new: str, reason: str) -> None:
    """A breaker transition as a ``model.breaker`` event; rare, so published at once."""
    fields = {
        "schema": "1", "type": BREAKER_EVENT, "model": model, "from": old, "to": new,
        "reason": reason[:500], "ts": utc_iso(),
    }
    side_effects().events.publish([(BREAKER_EVENT, fields)])


# Cheap to build and inert until used (no thread, connection or model yet), so a rare second
# construction racing the first is harmless; each forked child builds its own.
@cache
def side_effects() -> SideEffects:
    """This process's background writer of cache entries, events and hand-offs."""
    return SideEffects(get_settings(), current_app.send_task)


@cache
def snapshots() -> Snapshots:
    """This process's background writer of scored-feature snapshots, drift samples and shadow comparisons."""
    return Snapshots(get_settings(), side_effects().events)


@cache
def explainer_pool() -> ExplainerPool:
    """This process's native models for explanations; nothing is loaded until a task explains."""
    return ExplainerPool(registry())


def announce_served_version(name: str) -> None:
    """Publish the version this process serves; a replaced version triggers a prewarm."""
    scorer = model_pool().get(name).scorer
    if scorer.served_by != "onnx":
        return
    replaced = side_effects().cache.announce_version(name, scorer.version)
    if replaced is not None and replaced != scorer.version:
        log.info("model %s: cache now serves version %s (was %s); prewarming", name, scorer.version, replaced)
        try:
            current_app.send_task(PREWARM_TASK, kwargs={"models": [name]})
        except Exception as exc:  # Beat's next prewarm run covers a lost one
            log.warning("prewarm of model %s not sent: %s", name, exc.__class__.__name__)


def _warm(names: tuple[str, ...]) -> None:
    for name in names:
        try:
            announce_served_version(name)
        except LeadscoreError as exc:
            log.error("warm-up of model %s failed: %s", name, exc)


@worker_init.connect
def _import_the_store_before_forking(**_: object) -> None:
    # Every child reads the state store at warm-up: importing SQLAlchemy once in the parent, before
    # the fork, keeps that import (a few hundred ms) off each child's warm-up. No connection is made here.
    import sqlalchemy
    import sqlalchemy.dialects.postgresql
    import sqlalchemy.dialects.sqlite  # noqa: F401


@worker_init.connect
def _patch_broker_transport(**_: object) -> None:
    try:
        broker_patches.install()
    except RuntimeError as exc:  # Celery logs a signal handler's Exception and starts anyway: stop it here
        raise SystemExit(f"leadscore worker not started: {exc}") from exc


@worker_process_init.connect
def _start_warmup(**_: object) -> None:
    threading.Thread(target=_warm, args=(get_settings().warm_models,), name="model-warmup", daemon=True).start()


@worker_process_shutdown.connect
def _flush_side_effects(**_: object) -> None:
    if side_effects.cache_info().currsize and not side_effects().drain(timeout=2.0):
        log.warning("side effects still waiting at shutdown were lost")
    if snapshots.cache_info().currsize and not snapshots().drain(timeout=2.0):
        log.warning("snapshots still waiting at shutdown were lost")


@worker_process_shutdown.connect
def _retire_metrics(**_: object) -> None:
    metrics.child_exited()
