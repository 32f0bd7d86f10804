"""a. ``score_lead`` round trip against the floor; d. against the naive load-per-call task.

Calls alternate between the tasks compared (echo, score_lead, echo, ...) so drift in the
machine's speed during the run hits both alike. Each call is ``send_task(...).get()``, what
``score_lead.delay(lead).get()`` does in a web service.
"""

from __future__ import annotations

import time
from typing import Any

from bench.context import MODEL, BenchContext
from bench.report import Section, Table, Target, percentiles_ms

TITLE = "Round trip: score_lead against the floor and the naive baseline"


def run(ctx: BenchContext) -> Section:
    leads = ctx.leads(1000, seed=2)
    n = ctx.size(quick=200, full=3000)
    floor, scored = _alternate(ctx, ["bench.echo", "leadscore.score_lead"], leads, n, warmup=ctx.size(30, 300))
    n_naive = ctx.size(quick=20, full=300)
    naive, scored_again = _alternate(ctx, ["bench.naive_score", "leadscore.score_lead"], leads, n_naive, warmup=3)
    f, s, nv, s2 = (percentiles_ms(x) for x in (floor, scored, naive, scored_again))
    family = ctx.registry.card(MODEL, ctx.version)["family"]
    rows = [
        ("bench.echo (floor: returns its argument)", n, f["p50"], f["p95"], f["p99"], 1.0),
        ("leadscore.score_lead", n, s["p50"], s["p95"], s["p99"], s["p50"] / f["p50"]),
        ("bench.naive_score (unpickles the sklearn model per call)", n_naive, nv["p50"], nv["p95"], nv["p99"], nv["p50"] / f["p50"]),
        ("leadscore.score_lead (alternating with naive)", n_naive, s2["p50"], s2["p95"], s2["p99"], s2["p50"] / f["p50"]),
    ]
    return Section(
        TITLE,
        "Milliseconds per `send_task(...).get()` from this process, on the scoring worker (the stack's "
        "command: prefork, 2 children, prefetch 4, events on). Calls alternate between the tasks of a pair.",
        tables=[Table(("task", "calls", "p50 ms", "p95 ms", "p99 ms", "p50 / floor p50"), rows)],
        targets=[
            Target("score_lead p50 vs floor p50", "<= 1.3x", f"{s['p50'] / f['p50']:.2f}x", s["p50"] <= 1.3 * f["p50"]),
            Target("score_lead p99 vs floor p99", "<= 2x", f"{s['p99'] / f['p99']:.2f}x", s["p99"] <= 2 * f["p99"]),
            Target("score_lead vs naive load-per-call, p50", ">= 8x faster", f"{nv['p50'] / s2['p50']:.1f}x", nv["p50"] >= 8 * s2["p50"]),
        ],
        notes=[
            f"The naive baseline's cost is mostly unpickling the champion, a {family} here: the cheaper the "
            "model is to load, the smaller the gap (model load times are in the memory section).",
            f"No task can beat the naive one by more than its round trip over the floor's, {nv['p50'] / f['p50']:.1f}x in "
            "this run: the 8x target needs a model that takes 8 floors' time to unpickle.",
        ],
    )


def _alternate(ctx: BenchContext, tasks: list[str], leads: list[dict[str, Any]], n: int, warmup: int) -> tuple[list[float], ...]:
    times: list[list[float]] = [[] for _ in tasks]
    for i in range(warmup + n):
        lead = leads[i % len(leads)]
        for k, task in enumerate(tasks):
            started = time.perf_counter()
            ctx.send(task, lead).get(timeout=30)
            if i >= warmup:
                times[k].append(time.perf_counter() - started)
    return tuple(times)
