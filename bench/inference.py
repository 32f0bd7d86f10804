"""b. In-process inference: ONNX Runtime (what workers serve) against the native sklearn model."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from bench.context import MODEL, BenchContext
from bench.report import Section, Table
from ml_core.features import encode_leads
from ml_core.onnx_model import OnnxScorer

TITLE = "In-process inference: ONNX Runtime against sklearn"
BATCHES = (1, 50, 1000, 10_000)


def run(ctx: BenchContext) -> Section:
    artifact = ctx.registry.load(MODEL)
    onnx = OnnxScorer(MODEL, artifact.version, artifact.onnx)
    native = ctx.registry.load_native(MODEL, artifact.version)
    X = encode_leads(ctx.spec, ctx.leads(10_000, seed=3)).X
    rows = []
    for size in BATCHES:
        batch = np.ascontiguousarray(X[:size])
        reps = max(3, ctx.size(quick=20_000, full=200_000) // size // (10 if size == 1 else 1))
        reps = min(reps, ctx.size(quick=300, full=3000))
        ort_s = _median_seconds(lambda: onnx.predict_proba(batch), reps)
        sk_s = _median_seconds(lambda: native.predict_proba(batch), max(3, reps // 4))
        rows.append((size, reps, ort_s * 1000, sk_s * 1000, sk_s / ort_s, size / ort_s, size / sk_s))
    return Section(
        TITLE,
        f"Median milliseconds per call in this process, one thread for ONNX Runtime (as in workers); "
        f"model {MODEL} {artifact.version} ({artifact.card['family']}).",
        tables=[Table(("rows", "calls (ORT)", "ORT ms", "sklearn ms", "sklearn / ORT", "ORT rows/s", "sklearn rows/s"), rows)],
    )


def _median_seconds(call: Callable[[], object], reps: int) -> float:
    call()  # first call pays one-time allocations
    times = []
    for _ in range(reps):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return float(np.median(times))
