"""Bulk-scoring tasks, all on the batch queue: thin adapters over ``ml_core.bulk_chunk``.

A chunk task carries only ``(job_id, chunk, model)``; its leads wait in Redis (see
``leadscore.stores.bulk``) until its result is recorded, so a lost chunk can be sent again.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from celery import Task, shared_task
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from leadscore.settings import get_settings
from leadscore.stores.bulk import BulkStore
from leadscore.stores.bulk_jobs import CHUNK_TASK, RESUME_TASK, WINDOW_DONE_TASK, finalize_if_complete, resume
from leadscore.worker import bulk_claims, metrics  # noqa: F401 - bulk_claims: its worker signal handlers
from leadscore.worker.process import model_pool
from ml_core.bulk_chunk import pack, score_chunk
from ml_core.errors import BulkJobError, LeadscoreError
from ml_core.lead_files import LeadChunk

log = logging.getLogger(__name__)


def _store(task: Task) -> BulkStore:
    return BulkStore.for_app(task.app, get_settings().bulk_job_ttl_seconds)


# Redis blips are the one transient failure here: retried with backoff. Anything else is
# recorded on the job (the client stops and says so) and raised, never retried forever.
@shared_task(
    name=CHUNK_TASK,
    bind=True,
    acks_late=True,
    autoretry_for=(RedisConnectionError, RedisTimeoutError),
    retry_backoff=True,
    max_retries=5,
    throws=(LeadscoreError,),
)
def bulk_chunk(self: Task, job_id: str, chunk: int, model: str) -> dict[str, Any]:
    """Score chunk ``chunk`` of job ``job_id`` and record it; a rerun of a recorded chunk is a no-op."""
    started = time.perf_counter()
    store = _store(self)
    if store.is_recorded(job_id, chunk):
        return {"chunk": chunk, "recorded": False}
    payload = store.input(job_id, chunk)
    if payload is None and store.is_recorded(job_id, chunk):
        return {"chunk": chunk, "recorded": False}  # another run recorded it (and dropped the input) meanwhile
    try:
        if payload is None:
            raise BulkJobError(job_id, f"chunk {chunk} has neither a result nor its input (expired?); submit the input again")
        settings = get_settings()
        served = model_pool().get(model)
        leads = LeadChunk.from_json(payload)
        results = score_chunk(
            served.spec,
            served.scorer,
            leads,
            unknown_fields=settings.unknown_fields,
            default_confidence_threshold=settings.default_confidence_threshold,
        )
        metrics.record(model, "bulk_chunk", results, time.perf_counter() - started)
        packed = pack(results, leads.first_row, model)
    except (RedisConnectionError, RedisTimeoutError):
        raise
    except LeadscoreError as exc:
        store.record_failure(job_id, chunk, f"{exc.__class__.__name__}: {exc}")
        raise
    except Exception as exc:  # recorded so the client stops instead of waiting, then raised
        store.record_failure(job_id, chunk, f"{exc.__class__.__name__} (see the worker log)")
        raise
    new = store.record(job_id, chunk, packed)
    return {"chunk": chunk, "recorded": new, "leads": packed["n"], "invalid": len(packed["invalid"])}


@shared_task(name=WINDOW_DONE_TASK, bind=True, acks_late=True, throws=(LeadscoreError,))
def bulk_window_done(self: Task, _chunks: list[dict[str, Any]], job_id: str) -> dict[str, Any]:
    """Chord callback of one window: writes the job's summary if this was the last chunk missing."""
    summary = finalize_if_complete(_store(self), job_id)
    if summary is not None:
        log.info("bulk job %s complete: %d leads, %d invalid", job_id, summary["leads"], summary["invalid"])
    return {"job_id": job_id, "complete": summary is not None}


@shared_task(name=RESUME_TASK, bind=True, acks_late=True, throws=(LeadscoreError,))
def bulk_resume(self: Task, job_id: str) -> dict[str, Any]:
    """Re-dispatch the chunks of ``job_id`` that have no recorded result; finalize when complete."""
    return resume(self.app, _store(self), job_id, get_settings().bulk_window_chunks)
