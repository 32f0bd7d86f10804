"""c. Throughput in leads/s: one task per lead, predict_batch and bulk_score, against the
in-process floor (the same validation and ONNX call in this one process, no Celery); and the
chunk-size sweep behind the default ``LEADSCORE_BATCH_CHUNK_SIZE``."""

from __future__ import annotations

import time
from typing import Any

from bench.context import MODEL, BenchContext
from bench.report import Section, Table, Target
from leadscore.client.bulk import bulk_score
from ml_core.onnx_model import OnnxScorer
from ml_core.scoring import score_batch

TITLE = "Throughput: one task per lead, predict_batch, bulk_score and the in-process floor"


def run(ctx: BenchContext) -> Section:
    n = ctx.size(quick=20_000, full=100_000)
    leads = ctx.leads(n, seed=4)
    chunk = ctx.settings.batch_chunk_size
    n_single = ctx.size(quick=500, full=5000)
    floor = _in_process(ctx, leads, chunk)
    per_lead = _one_task_per_lead(ctx, leads[:n_single])
    batches = _predict_batch(ctx, leads, chunk)
    bulk = _bulk(ctx, leads, chunk)
    rows = [
        ("in-process floor (score_batch, one process, no Celery)", n, floor, 1.0),
        ("score_lead, one task per lead", n_single, per_lead, per_lead / floor),
        (f"predict_batch, {chunk} leads per task, all sent at once", n, batches, batches / floor),
        (f"bulk_score, chunks of {chunk}", n, bulk, bulk / floor),
    ]
    sizes = (250, 1000, 4000) if ctx.quick else (100, 250, 500, 1000, 2000, 5000, 10_000)
    sweep = [(size, n // size + (n % size > 0), _bulk(ctx, leads, size)) for size in sizes]
    best = max(sweep, key=lambda row: row[2])
    return Section(
        TITLE,
        f"Leads per second, end to end from this process (send to last result). The batch worker runs the "
        f"stack's command (prefork, 2 children, prefetch 1); the floor runs in one process. {n:,} leads.",
        tables=[
            Table(("path", "leads", "leads/s", "vs floor"), rows),
            Table(("bulk chunk size", "chunks", "leads/s"), sweep),
        ],
        targets=[
            Target(f"bulk_score vs one task per lead ({n:,} leads)", ">= 100x", f"{bulk / per_lead:.0f}x", bulk >= 100 * per_lead),
            Target(f"bulk_score vs in-process floor ({n:,} leads)", ">= 50%", f"{100 * bulk / floor:.0f}%", bulk >= 0.5 * floor),
        ],
        notes=[f"Fastest chunk size in this run: {best[0]} ({best[2]:,.0f} leads/s); the default is {chunk}."],
    )


def _in_process(ctx: BenchContext, leads: list[dict[str, Any]], chunk: int) -> float:
    artifact = ctx.registry.load(MODEL)
    scorer = OnnxScorer(MODEL, artifact.version, artifact.onnx)
    spec = ctx.spec
    started = time.perf_counter()
    for at in range(0, len(leads), chunk):
        score_batch(spec, scorer, leads[at : at + chunk])
    return len(leads) / (time.perf_counter() - started)


def _one_task_per_lead(ctx: BenchContext, leads: list[dict[str, Any]]) -> float:
    started = time.perf_counter()
    results = [ctx.send("leadscore.score_lead", lead) for lead in leads]
    for result in results:
        result.get(timeout=300)
    return len(leads) / (time.perf_counter() - started)


def _predict_batch(ctx: BenchContext, leads: list[dict[str, Any]], chunk: int) -> float:
    started = time.perf_counter()
    results = [ctx.send("leadscore.predict_batch", leads[at : at + chunk], queue=ctx.settings.batch_queue) for at in range(0, len(leads), chunk)]
    for result in results:
        result.get(timeout=300)
    return len(leads) / (time.perf_counter() - started)


def _bulk(ctx: BenchContext, leads: list[dict[str, Any]], chunk: int) -> float:
    started = time.perf_counter()
    job = bulk_score(leads, app=ctx.app, chunk_size=chunk)
    summary = job.wait(timeout=900)
    elapsed = time.perf_counter() - started
    job.delete()
    if summary["leads"] != len(leads):
        raise RuntimeError(f"bulk job {job.id} summarized {summary['leads']} of {len(leads)} leads")
    return len(leads) / elapsed
