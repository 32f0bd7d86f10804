"""Which live worker holds which bulk chunk, so work lost with a dead worker is sent again quickly.

A Redis broker gives a dead worker's prefetched messages back only after ``visibility_timeout``
(600 s), and a waiting client used to notice only after ``bulk_stall_seconds`` without progress.
Here each worker's main process (the one that receives messages, prefetched ones included)
records ``chunk -> worker`` in the job's ``claims`` hash as it receives a chunk task, and renews
a liveness key every ``worker_heartbeat_seconds`` (it expires after three). A waiting client
(``leadscore.stores.bulk_jobs.recover``) checks the claimants about once a heartbeat: the unrecorded chunks
of a worker whose key expired are released and dispatched again. Chunks are idempotent (one
result per index, counted once), so a chunk whose first run still completes, or whose message
the broker restores later, changes nothing.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from typing import Any

from celery import Celery, current_app
from celery.signals import task_received, worker_ready

from leadscore.settings import get_settings
from leadscore.stores.bulk import BulkStore
from leadscore.stores.bulk_jobs import CHUNK_TASK
from ml_core.errors import BulkJobError

log = logging.getLogger(__name__)
MISSED_BEATS = 3

_worker_id: str | None = None


def worker_id() -> str:
    """This worker's identity for claims: host and main-process pid (a restart is a new worker)."""
    global _worker_id
    if _worker_id is None:
        _worker_id = f"{socket.gethostname()}:{os.getpid()}"
    return _worker_id


def _store(app: Celery) -> BulkStore:
    return BulkStore.for_app(app, get_settings().bulk_job_ttl_seconds)


@task_received.connect
def _claim(request: Any = None, **_: object) -> None:
    if request is None or request.name != CHUNK_TASK:
        return
    try:
        job_id, chunk = request.args[0], int(request.args[1])
        _store(current_app).claim(job_id, chunk, worker_id())
    except Exception as exc:  # an unclaimed chunk is still recovered by the stall timer
        log.warning("bulk chunk claim not recorded: %s", exc.__class__.__name__)


@worker_ready.connect
def _start_heartbeat(sender: Any = None, **_: object) -> None:
    app = getattr(sender, "app", None) or current_app
    interval = get_settings().worker_heartbeat_seconds
    try:
        store = _store(app)
    except BulkJobError:  # no Redis result backend: no bulk jobs, nothing to claim
        return

    def beat() -> None:
        try:
            store.beat(worker_id(), interval * MISSED_BEATS)
        except Exception as exc:  # a Redis blip; the next beat tries again
            log.warning("worker heartbeat not written: %s", exc.__class__.__name__)

    def keep_beating() -> None:
        while True:
            time.sleep(interval)
            beat()

    beat()  # before the first claims are checked against it
    threading.Thread(target=keep_beating, name="bulk-heartbeat", daemon=True).start()
