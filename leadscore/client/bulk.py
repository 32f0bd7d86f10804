"""``bulk_score``: stream leads into a bulk job with bounded memory; then watch, fetch or resume it.

The client reads its input one chunk at a time and keeps at most ``2 * bulk_window_chunks``
chunks submitted but not yet recorded: past that it waits for workers to record some
(backpressure), so neither the client, Redis nor the broker ever holds the whole input.
``bulk_score`` is a function, not a task: its input streams from the caller, and a task must
not sit waiting on other tasks.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from celery import Celery

from leadscore.settings import Settings, get_settings
from leadscore.stores.bulk import BulkStore, Progress
from leadscore.stores.bulk_jobs import dispatch, finalize_if_complete, recover, resume
from ml_core.bulk_chunk import chunk_rows
from ml_core.errors import BulkJobError
from ml_core.identifiers import DEFAULT_MODEL
from ml_core.lead_files import LeadChunk, chunk_leads, read_lead_file
from ml_core.result_files import ResultWriter
from ml_core.spec import load_spec

ProgressCallback = Callable[[Progress], None]
_CALLBACK_GRACE_SECONDS = 2.0
_MAX_STALLS = 3


def bulk_score(
    source: Iterable[Any] | str | os.PathLike[str],
    *,
    model: str = DEFAULT_MODEL,
    job_id: str | None = None,
    chunk_size: int | None = None,
    window: int | None = None,
    app: Celery | None = None,
    on_progress: ProgressCallback | None = None,
    stall_seconds: float | None = None,
) -> BulkJob:
    """Submit every lead of ``source`` (JSON-shaped leads, or a CSV/Parquet path) as a bulk job.

    Returns once the whole input is submitted; ``BulkJob.wait()`` then waits for the summary.
    Given the ``job_id`` of an earlier run over the same input, it continues that job: chunks
    already recorded or still held in Redis are not submitted again.
    """
    settings = get_settings()
    job = BulkJob(job_id or uuid.uuid4().hex, app=app, settings=settings, stall_seconds=stall_seconds)
    chunk_size = chunk_size or settings.batch_chunk_size
    window = window or settings.bulk_window_chunks
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        spec = load_spec(settings.models_dir, model)
        chunks = read_lead_file(path, spec, chunk_size, settings.unknown_fields)
        origin: dict[str, Any] = {"file": path.name, "bytes": path.stat().st_size}
    else:
        chunks, origin = chunk_leads(source, chunk_size), {}
    job._submit(chunks, model=model, chunk_size=chunk_size, window=window, origin=origin, on_progress=on_progress)
    return job


class BulkJob:
    """A handle on a bulk job by id: progress, summary, results, resume. Any process can hold one."""

    def __init__(
        self,
        job_id: str,
        *,
        app: Celery | None = None,
        settings: Settings | None = None,
        stall_seconds: float | None = None,
    ) -> None:
        if app is None:
            from leadscore import app as default_app

            app = default_app
        self.settings = settings or get_settings()
        self.id = job_id
        self.app = app
        self.store = BulkStore.for_app(app, self.settings.bulk_job_ttl_seconds)
        self.stall_seconds = stall_seconds or self.settings.bulk_stall_seconds
        self.store.key(job_id, "meta")  # refuses a malformed id before anything is written

    def progress(self) -> Progress:
        return self.store.progress(self.id)

    def summary(self) -> dict[str, Any] | None:
        return self.store.summary(self.id)

    def resume(self) -> dict[str, Any]:
        return resume(self.app, self.store, self.id, self.settings.bulk_window_chunks)

    def wait(self, timeout: float | None = None, on_progress: ProgressCallback | None = None) -> dict[str, Any]:
        """The summary, once every chunk is recorded. Finalizes here if no chord callback did."""
        all_recorded_at: float | None = None

        def complete(p: Progress) -> bool:
            nonlocal all_recorded_at
            if p.status == "complete":
                return True
            if p.chunks_total is not None and p.chunks_done >= p.chunks_total:
                all_recorded_at = all_recorded_at or time.monotonic()
                if time.monotonic() - all_recorded_at >= _CALLBACK_GRACE_SECONDS:
                    return finalize_if_complete(self.store, self.id) is not None
            return False

        self._watch(complete, on_progress, timeout)
        summary = self.summary()
        assert summary is not None  # complete() only returns True once it is written
        return summary

    def results(self) -> Iterator[dict[str, Any]]:
        """Every input lead's row (``ml_core.bulk_chunk.ROW_FIELDS`` plus ``problems``; ``features`` for a conversation), in input order."""
        total = self.store.meta(self.id).get("chunks_total")
        if total is None:
            raise BulkJobError(self.id, "its input is not fully submitted yet")
        for packed in self.store.results(self.id, total):
            yield from chunk_rows(packed)

    def write(self, path: Path) -> int:
        """Stream the results to a CSV, Parquet or JSON-lines file; returns the number of rows written."""
        with ResultWriter(Path(path)) as writer:
            stream = ResultStream(self, writer)
            stream.drain()
            total = self.store.meta(self.id).get("chunks_total")
            if total is None or stream.next_chunk < total:
                raise BulkJobError(self.id, f"chunk {stream.next_chunk} has no recorded result yet")
        return writer.rows

    def delete(self) -> int:
        return self.store.delete(self.id)

    def _submit(
        self,
        chunks: Iterator[LeadChunk],
        *,
        model: str,
        chunk_size: int,
        window: int,
        origin: dict[str, Any],
        on_progress: ProgressCallback | None,
    ) -> None:
        recorded, held = self._continue(model, chunk_size, origin)
        self.store.create(self.id, {"model": model, "chunk_size": chunk_size, "origin": origin})
        pending: list[int] = []
        n_chunks = n_leads = 0
        limit = 2 * window
        for chunk in chunks:
            index, n_chunks, n_leads = n_chunks, n_chunks + 1, n_leads + len(chunk.leads)
            if index in recorded or index in held:
                continue
            # A full window goes out only once another chunk exists, so the last window is always
            # dispatched after end_input: its callback then knows the job's size.
            if len(pending) == window:
                dispatch(self.app, self.id, model, pending)
                pending = []
            self._watch(lambda p: p.chunks_submitted - p.chunks_done < limit, on_progress)
            self.store.submit(self.id, index, len(chunk.leads), chunk.to_json())
            pending.append(index)
        self.store.end_input(self.id, n_chunks, n_leads)
        dispatch(self.app, self.id, model, pending)
        if not pending:  # nothing in flight from this call: empty input, or a continuation with all done
            finalize_if_complete(self.store, self.id)

    def _continue(self, model: str, chunk_size: int, origin: dict[str, Any]) -> tuple[set[int], set[int]]:
        """For an existing job: check it is the same input, re-dispatch what it holds, return
        (recorded chunks, chunks whose input is held)."""
        try:
            meta = self.store.meta(self.id)
        except BulkJobError:
            return set(), set()
        theirs = {"model": meta["model"], "chunk_size": meta["chunk_size"], "origin": meta["origin"]}
        ours = {"model": model, "chunk_size": chunk_size, "origin": origin}
        if theirs != ours:
            raise BulkJobError(self.id, f"exists with {theirs}; cannot continue it with {ours}")
        report = self.resume()
        return self.store.recorded(self.id), set(report["redispatched"])

    def _watch(self, done: Callable[[Progress], bool], on_progress: ProgressCallback | None, timeout: float | None = None) -> Progress:
        """Poll until ``done``; stop on a failed chunk; about once a worker heartbeat, re-dispatch the
        chunks of workers that died (``leadscore.worker.bulk_claims``); on a stall, every missing chunk."""
        started = last_change = last_recovery = time.monotonic()
        last_done, stalls, delay = -1, 0, 0.005
        while True:
            progress = self.progress()
            if on_progress is not None:
                on_progress(progress)
            if progress.chunks_failed:
                chunk, problem = sorted(self.store.failures(self.id).items())[0]
                raise BulkJobError(self.id, f"chunk {chunk} failed: {problem}; once fixed, run `leadscore bulk resume {self.id}`")
            if done(progress):
                return progress
            now = time.monotonic()
            if now - last_recovery >= self.settings.worker_heartbeat_seconds:
                recover(self.app, self.store, self.id, self.settings.bulk_window_chunks)
                last_recovery = now
            if progress.chunks_done != last_done:
                last_done, last_change, stalls = progress.chunks_done, now, 0
            elif now - last_change > self.stall_seconds:
                if stalls == _MAX_STALLS:
                    raise BulkJobError(
                        self.id,
                        f"no chunk finished in {stalls} x {self.stall_seconds:.0f}s: is a worker consuming the batch queue?"
                        f" The job is kept; resume it with `leadscore bulk resume {self.id}`",
                    )
                self.resume()  # lost chunks (a worker killed mid-chunk) go out again
                stalls, last_change = stalls + 1, now
            if timeout is not None and now - started > timeout:
                raise BulkJobError(self.id, f"not complete after {timeout:.0f}s ({progress.chunks_done} of {progress.chunks_total} chunks recorded)")
            time.sleep(delay)
            delay = min(delay * 2, 0.02)


class ResultStream:
    """Writes a job's recorded chunks to a ``ResultWriter`` in input order, as they arrive."""

    def __init__(self, job: BulkJob, writer: ResultWriter, keep_errors: int = 0) -> None:
        self.job, self.writer, self.keep_errors = job, writer, keep_errors
        self.next_chunk = 0
        self.errors: list[dict[str, Any]] = []

    def drain(self) -> int:
        """Write every chunk recorded from ``next_chunk`` on, stopping at the first missing one."""
        written = 0
        while (packed := self.job.store.result(self.job.id, self.next_chunk)) is not None:
            rows = list(chunk_rows(packed))
            self.writer.write(rows)
            room = self.keep_errors - len(self.errors)
            if room > 0:
                self.errors.extend(r for r in rows if r["error"] is not None)
                del self.errors[self.keep_errors :]
            self.next_chunk += 1
            written += len(rows)
        return written
