"""Many single scores at once: ``score_lead`` against the floor at 1, 8 and 32 callers.

Same worker (the stack's scoring command), same run: for each number of callers the floor
(``bench.echo``) and ``score_lead`` take turns, several rounds each, so drift in the machine's
speed hits both alike. ``callers`` is the number of requests kept outstanding: the client sends
that many, and sends the next one as each result comes back (one thread; results are awaited
oldest first). Worker CPU is the user+system time of the scoring worker's process group (main
process and pool children) from ``/proc``, divided by the requests served; client CPU is this
process's. Batch sizes come from the worker's ``leadscore_score_batch_size`` histogram, scraped from its /metrics.
"""

from __future__ import annotations

import os
import time
import urllib.request
from collections import deque
from pathlib import Path
from typing import Any

from bench.context import BenchContext
from bench.report import Section, Table, Target, percentiles_ms

TITLE = "Many single scores at once: micro-batching against the floor"
CALLERS = (1, 8, 32)
TASKS = ("bench.echo", "leadscore.score_lead")
BATCH_HISTOGRAM = "leadscore_score_batch_size"
_TICKS = os.sysconf("SC_CLK_TCK")


def run(ctx: BenchContext) -> Section:
    load = os.getloadavg()[0]  # before this section: the bench's earlier sections count in it too
    leads = ctx.leads(1000, seed=5)
    rounds = ctx.size(quick=2, full=4)
    per_round = {1: ctx.size(30, 400), 8: ctx.size(60, 800), 32: ctx.size(120, 1500)}
    for task in TASKS:  # warm both paths (children, connections, models) before measuring
        _closed_loop(ctx, task, leads, 8, ctx.size(30, 100))
    measured: dict[tuple[int, str], dict[str, Any]] = {}
    for callers in CALLERS:
        for r in range(rounds):
            order = TASKS if r % 2 == 0 else TASKS[::-1]
            for task in order:
                _add(measured.setdefault((callers, task), {}), _phase(ctx, task, leads, callers, per_round[callers]))
    rows = []
    for callers in CALLERS:
        floor = measured[(callers, TASKS[0])]
        for task in TASKS:
            m = measured[(callers, task)]
            p = percentiles_ms(m["latency"])
            cpu = m["worker_cpu"] / m["n"] * 1000
            rows.append((
                callers, task, m["n"], m["n"] / m["wall"], p["p50"], p["p99"], cpu, m["main_cpu"] / m["n"] * 1000,
                cpu / (floor["worker_cpu"] / floor["n"] * 1000), 100 * m["client_cpu"] / m["wall"],
            ))
    sizes = [_size_row(callers, measured[(callers, TASKS[1])]["batches"]) for callers in CALLERS]
    one_floor, one = (percentiles_ms(measured[(1, t)]["latency"]) for t in TASKS)
    cpu_ratio = next(row[8] for row in rows if row[0] == 32 and row[1] == TASKS[1])
    floor_32 = measured[(32, TASKS[0])]
    main_share = floor_32["main_cpu"] / floor_32["worker_cpu"]
    busiest_client = max(row[9] for row in rows if row[0] == 32)
    return Section(
        TITLE,
        "Requests kept outstanding by one client thread (`callers`), floor and `score_lead` taking turns "
        f"({rounds} rounds each) on the scoring worker, the stack's command. Worker CPU per request: the "
        "worker's process group's user+system time from `/proc` over requests served. Client CPU: this "
        "process's CPU time over wall time (100% is one core, where the client itself is the limit). "
        f"{os.cpu_count()} cores, load average {load:.2f} at the start of this section: compare ratios within this run.",
        tables=[
            Table(
                (
                    "callers", "task", "requests", "req/s", "p50 ms", "p99 ms", "worker CPU ms / request",
                    "of which main process", "CPU vs floor", "client CPU %",
                ),
                rows,
            ),
            Table(("callers", "batches", "mean size", "p50 size", "max size", "size 1", "2-7", "8-31", "32+"), sizes),
        ],
        targets=[
            Target("32 callers: score_lead worker CPU per request vs floor", "<= 0.6x", f"{cpu_ratio:.2f}x", cpu_ratio <= 0.6),
            Target("1 caller: score_lead p50 vs floor p50", "<= 1.3x", f"{one['p50'] / one_floor['p50']:.2f}x", one["p50"] <= 1.3 * one_floor["p50"]),
            Target("1 caller: score_lead p99 vs floor p99", "<= 2x", f"{one['p99'] / one_floor['p99']:.2f}x", one["p99"] <= 2 * one_floor["p99"]),
        ],
        notes=[
            f"At 32 callers the client process used up to {busiest_client:.0f}% of a core: "
            + ("it, not the worker, bounds req/s there." if busiest_client >= 85 else "below one core, so the worker (or the broker) bounds req/s."),
            "A batch is what queued while the previous one ran (no timer): at 1 caller every batch is 1 lead.",
            f"At 32 callers the worker's main process (receiving, acknowledging and reporting each message, "
            f"one by one, for both tasks) spent {100 * main_share:.0f}% of the floor's worker CPU: batching "
            "cuts the children's share per request, not that one.",
        ],
    )


def _phase(ctx: BenchContext, task: str, leads: list[dict[str, Any]], callers: int, n: int) -> dict[str, Any]:
    pids = ctx.workers.pids()["worker-scoring"]
    port = ctx.workers.metrics_ports["worker-scoring"]
    before_batches = batch_sizes(port)
    main_before, children_before, client_before = _cpu(pids[:1]), _cpu(pids[1:]), _own_cpu()
    started = time.perf_counter()
    latency = _closed_loop(ctx, task, leads, callers, n)
    wall = time.perf_counter() - started
    main_cpu, client_cpu = _cpu(pids[:1]) - main_before, _own_cpu() - client_before
    worker_cpu = main_cpu + _cpu(pids[1:]) - children_before
    after = batch_sizes(port)
    batches = {size: count - before_batches.get(size, 0) for size, count in after.items()}
    return {"n": n, "wall": wall, "latency": latency, "worker_cpu": worker_cpu, "main_cpu": main_cpu, "client_cpu": client_cpu, "batches": batches}


def _add(total: dict[str, Any], phase: dict[str, Any]) -> None:
    for key in ("n", "wall", "worker_cpu", "main_cpu", "client_cpu"):
        total[key] = total.get(key, 0) + phase[key]
    total.setdefault("latency", []).extend(phase["latency"])
    for size, count in phase["batches"].items():
        total.setdefault("batches", {})[size] = total.get("batches", {}).get(size, 0) + count
    total.setdefault("batches", {})


def _closed_loop(ctx: BenchContext, task: str, leads: list[dict[str, Any]], callers: int, n: int) -> list[float]:
    """``n`` requests, ``callers`` of them outstanding at any time; each request's round trip."""
    window: deque[tuple[float, Any]] = deque()
    latency: list[float] = []
    sent = 0
    while sent < n or window:
        while sent < n and len(window) < callers:
            window.append((time.perf_counter(), ctx.send(task, leads[sent % len(leads)])))
            sent += 1
        at, result = window.popleft()
        result.get(timeout=60)
        latency.append(time.perf_counter() - at)
    return latency


def _cpu(pids: list[int]) -> float:
    """User+system seconds of these processes (the worker's main process and its children)."""
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime: fields 14 and 15 of stat
    return total


def _own_cpu() -> float:
    t = os.times()
    return t.user + t.system


def batch_sizes(port: int) -> dict[int, int]:
    """Batches by size so far, scraped from the worker's /metrics at ``port`` (bucket upper bounds are sizes)."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        exposition = response.read().decode()
    cumulative: dict[int, float] = {}
    for family in text_string_to_metric_families(exposition):
        if family.name != BATCH_HISTOGRAM:
            continue
        for sample in family.samples:
            if sample.name.endswith("_bucket") and sample.labels["le"] != "+Inf":
                bound = int(float(sample.labels["le"]))
                cumulative[bound] = cumulative.get(bound, 0) + sample.value
    sizes, below = {}, 0.0
    for bound in sorted(cumulative):
        sizes[bound] = int(cumulative[bound] - below)
        below = cumulative[bound]
    return sizes


def _size_row(callers: int, batches: dict[int, int]) -> tuple[Any, ...]:
    total = sum(batches.values())
    if not total:
        return (callers, 0, "-", "-", "-", "-", "-", "-", "-")
    expanded = sorted(size for size, count in batches.items() for _ in range(count))
    share = lambda lo, hi: f"{100 * sum(c for s, c in batches.items() if lo <= s <= hi) / total:.0f}%"  # noqa: E731
    return (
        callers, total, sum(expanded) / total, expanded[total // 2], expanded[-1],
        share(1, 1), share(2, 7), share(8, 31), share(32, 10**9),
    )
