"""Bulk-job operations shared by the client, the CLI and the tasks: dispatch, finalize, resume.

Chunks go out as chords: a group of ``leadscore.bulk_chunk`` tasks on the batch queue whose
callback, ``leadscore.bulk_window_done``, writes the summary once every chunk of the job is
recorded. A job is a sequence of such chords (windows) rather than one chord over all chunks:
a chord's header is published all at once, so one chord would park the whole input in Redis
before the first chunk is scored. Windows let the client keep at most two windows of input
waiting.

Nothing depends on a chord callback firing exactly once: ``finalize_if_complete`` decides from
the recorded chunks alone, so a callback that fires early (a chunk that ran twice), late, twice
or never (Redis chord bugs) changes nothing that ``resume`` or the client cannot redo.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from celery import Celery, chord

from leadscore.stores.bulk import BulkStore
from ml_core.bulk_summary import SummaryBuilder

CHUNK_TASK = "leadscore.bulk_chunk"
WINDOW_DONE_TASK = "leadscore.bulk_window_done"
RESUME_TASK = "leadscore.bulk_resume"

log = logging.getLogger(__name__)


def dispatch(app: Celery, job_id: str, model: str, chunks: Sequence[int]) -> None:
    """One chord over ``chunks``; routing puts every task of it on the batch queue."""
    if not chunks:
        return
    header = [app.signature(CHUNK_TASK, args=(job_id, chunk, model)) for chunk in chunks]
    chord(header, app=app)(app.signature(WINDOW_DONE_TASK, args=(job_id,)))


def finalize_if_complete(store: BulkStore, job_id: str) -> dict[str, Any] | None:
    """Write the summary when every chunk of a fully submitted job is recorded; else None.

    Safe to run any number of times, from anywhere: it reads the recorded chunks, one result per
    chunk index, so a chunk that ran twice still counts once.
    """
    summary = store.summary(job_id)
    if summary is not None:
        return summary
    meta = store.meta(job_id)
    total = meta.get("chunks_total")
    if total is None or len(store.recorded(job_id)) < total:
        return None
    builder = SummaryBuilder()
    for packed in store.results(job_id, total):
        builder.add(packed)
    summary = {
        "job_id": job_id,
        "model": meta["model"],
        **builder.summary(),
        "created_at": meta["created_at"],
        "completed_at": round(time.time(), 3),
    }
    store.put_summary(job_id, summary)
    return summary


def recover(app: Celery, store: BulkStore, job_id: str, window: int) -> list[int]:
    """Re-dispatch the unrecorded chunks claimed by workers that stopped beating (``leadscore.worker.bulk_claims``).

    A dead worker may also have taken a chunk from the broker without living to claim it; the
    broker restores that message only after its visibility timeout. So when a worker is found
    dead, the job's unclaimed, unrecorded chunks go out again too: at most the client's two
    windows, and a chunk run twice still records one result.
    """
    claimants = store.claimants(job_id)
    dead = claimants - store.alive(claimants)
    if not dead:
        return []
    released = set(store.release(job_id, dead))
    unclaimed = store.submitted(job_id) - store.recorded(job_id) - store.claimed(job_id)
    chunks = sorted(chunk for chunk in released | unclaimed if store.has_input(job_id, chunk))
    if chunks:
        log.warning("bulk job %s: worker(s) %s stopped beating; re-dispatching chunks %s", job_id, sorted(dead), chunks)
        model = store.meta(job_id)["model"]
        for at in range(0, len(chunks), window):
            dispatch(app, job_id, model, chunks[at : at + window])
    return chunks


def resume(app: Celery, store: BulkStore, job_id: str, window: int) -> dict[str, Any]:
    """Re-dispatch every submitted chunk that has no recorded result, and finalize if complete.

    Idempotent: a chunk already recorded is never sent again, and one sent twice overwrites its
    own result. A chunk whose input has expired cannot be re-run here; it is reported instead.
    """
    meta = store.meta(job_id)
    missing = sorted(store.submitted(job_id) - store.recorded(job_id))
    redispatched = [chunk for chunk in missing if store.has_input(job_id, chunk)]
    # Recording deletes the input in the same atomic step, so a chunk without input is lost only
    # if it is still unrecorded now (a worker may have recorded it since ``missing`` was read).
    lost = [chunk for chunk in missing if chunk not in redispatched and not store.is_recorded(job_id, chunk)]
    for chunk in redispatched:
        store.clear_failure(job_id, chunk)
    for at in range(0, len(redispatched), window):
        dispatch(app, job_id, meta["model"], redispatched[at : at + window])
    summary = None if redispatched or lost else finalize_if_complete(store, job_id)
    return {
        "job_id": job_id,
        "redispatched": redispatched,
        "lost": lost,
        "input_complete": "chunks_total" in meta,
        "complete": summary is not None,
    }
