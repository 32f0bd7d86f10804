"""e. Model load time, worker memory with every model loaded, and a large lead file end to end
with the resident memory of the client and of every worker process measured, not estimated."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from bench.context import MODEL, BenchContext
from bench.report import Section, Table, Target
from bench.workers import memory_mib
from ml_core.onnx_model import OnnxScorer
from ml_core.synthetic import generate

TITLE = "Memory and model load time"
LIMIT_MIB = 500


def run(ctx: BenchContext) -> Section:
    load_rows = _load_times(ctx)
    _wait_until_warm(ctx)
    warm_rows = [(name, role, pid, memory_mib(pid)["rss"]) for name, pids in ctx.workers.pids().items() for role, pid in _roles(pids)]

    n = ctx.size(quick=20_000, full=1_000_000)
    ctx.workers.restart()  # fresh peaks: VmHWM below counts the file run only
    leads_csv, out = ctx.run_dir / "bench-leads.csv", ctx.run_dir / "bench-scores.parquet"
    _write_leads_csv(leads_csv, n)
    try:
        seconds, client_peak, code = _score_file(ctx, leads_csv, out)
    finally:
        leads_csv.unlink(missing_ok=True)
        out.unlink(missing_ok=True)
    peaks = [(name, role, pid, memory_mib(pid)["peak"]) for name, pids in ctx.workers.pids().items() for role, pid in _roles(pids)]
    peaks.insert(0, ("score-file client", "main", 0, client_peak))
    worst = max(p[3] for p in peaks)
    return Section(
        TITLE,
        "Load: median milliseconds to read, verify and open a registered model in this process. Memory: "
        "resident set (VmRSS) of each worker process once every served model is loaded, then the peak "
        f"resident set (VmHWM; the client's ru_maxrss) while `leadscore score-file` scored a {n:,}-row CSV "
        "into Parquet through freshly started workers.",
        tables=[
            Table(("model", "version", "ONNX load + session ms", "sklearn unpickle ms", "ONNX file KiB"), load_rows),
            Table(("worker", "process", "pid", "RSS MiB, models loaded"), warm_rows),
            Table(("process", "role", "pid", f"peak RSS MiB, {n:,}-row file"), peaks),
            Table(("file rows", "seconds", "leads/s", "exit code"), [(n, seconds, n / seconds, code)]),
        ],
        targets=[Target(f"{n:,}-lead file end to end, every process", f"< {LIMIT_MIB} MiB RSS", f"max {worst:.0f} MiB", worst < LIMIT_MIB and code in (0, 1))],
        notes=["The synthetic file has no invalid rows, so exit code 0 is expected."],
    )


def _load_times(ctx: BenchContext) -> list[tuple[object, ...]]:
    rows: list[tuple[object, ...]] = []
    for name in ctx.served_models():
        version = ctx.registry.champion(name)
        reps = ctx.size(quick=3, full=15)
        onnx_ms, native_ms = [], []
        for _ in range(reps):
            started = time.perf_counter()
            artifact = ctx.registry.load(name)
            OnnxScorer(name, artifact.version, artifact.onnx)
            onnx_ms.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            ctx.registry.load_native(name, version)
            native_ms.append((time.perf_counter() - started) * 1000)
        rows.append((name, version, float(np.median(onnx_ms)), float(np.median(native_ms)), len(artifact.onnx) / 1024))
    return rows


def _wait_until_warm(ctx: BenchContext, timeout: float = 120.0) -> None:
    """Ping each queue until every pool child has answered with every served model loaded."""
    wanted = set(ctx.served_models())
    deadline = time.monotonic() + timeout
    for name, queue in (("worker-scoring", ctx.settings.scoring_queue), ("worker-batch", ctx.settings.batch_queue)):
        children = set(ctx.workers.pids()[name][1:])
        warm: set[int] = set()
        while not children <= warm:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name} children {sorted(children - warm)} not warm after {timeout:.0f}s")
            for result in [ctx.send("leadscore.ping", queue=queue) for _ in range(2 * len(children))]:
                pong = result.get(timeout=30)
                if wanted <= set(pong["models"]):
                    warm.add(pong["pid"])


def _roles(pids: list[int]) -> list[tuple[str, int]]:
    return [("main", pids[0]), *((f"child {k}", pid) for k, pid in enumerate(pids[1:], 1))]


def _write_leads_csv(path: Path, n: int, block: int = 100_000) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    for k, at in enumerate(range(0, n, block)):
        frame = generate(MODEL, min(block, n - at), seed=100 + k).drop(columns="converted")
        frame["id"] = [f"lead-{at + i:08d}" for i in range(len(frame))]
        frame.to_csv(path, mode="w" if k == 0 else "a", header=k == 0, index=False)


# Linux folds the memory a process had before exec into its ru_maxrss, and a child forked from this
# (large) bench process starts with this process's pages: its ru_maxrss would be ours. A small
# launcher process forks the client instead, so the client's ru_maxrss is the client's own.
_LAUNCHER = (
    "import os, subprocess, sys; p = subprocess.Popen(sys.argv[2:]); _, s, ru = os.wait4(p.pid, 0); "
    "open(sys.argv[1], 'w').write(str(ru.ru_maxrss)); sys.exit(os.waitstatus_to_exitcode(s))"
)


def _score_file(ctx: BenchContext, leads_csv: Path, out: Path) -> tuple[float, float, int]:
    """Run the CLI as its own process; its peak RSS is the kernel's ru_maxrss of that process."""
    argv = [str(Path(sys.executable).parent / "leadscore"), "score-file", str(leads_csv), "--out", str(out)]
    maxrss = ctx.run_dir / "bench-score-file.maxrss"
    with open(ctx.run_dir / "bench-score-file.log", "wb") as log:
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", _LAUNCHER, str(maxrss), *argv], env=ctx.env, stdout=log, stderr=subprocess.STDOUT)
        seconds = time.perf_counter() - started
    peak_kib = int(maxrss.read_text())
    maxrss.unlink()
    return seconds, peak_kib / 1024, done.returncode
