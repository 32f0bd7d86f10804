"""What a process pays to import leadscore: the web client, the CLI, and a scoring worker before
and after an explanation loads the training stack into one of its children."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.context import BenchContext
from bench.memory import _roles, _wait_until_warm
from bench.report import Section, Table, Target
from bench.workers import REPO, memory_mib

TITLE = "Import cost: web client, CLI, scoring workers"
CLIENT_SECONDS, CLIENT_MIB, HELP_SECONDS = 1.0, 130, 1.0
PROBE = """
import sys, time
started = time.perf_counter()
import {module}
seconds = time.perf_counter() - started
heavy = [m for m in ("sklearn", "scipy", "pandas", "pyarrow", "onnxruntime", "shap", "matplotlib") if m in sys.modules]
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec from the forking parent (the bench, hundreds of MiB)
hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(seconds, hwm / 1024, ",".join(heavy) or "-")
"""


def run(ctx: BenchContext) -> Section:
    reps = ctx.size(quick=3, full=9)
    imports = [(module, *_import(module, reps)) for module in ("leadscore.client", "leadscore", "leadscore.cli.main")]
    leadscore = str(Path(sys.executable).parent / "leadscore")  # the console script beside this interpreter
    help_s = statistics.median(_wall([leadscore, "--help"]) for _ in range(reps))
    before, after, loaded = _worker_rss(ctx)
    client = imports[0]
    return Section(
        TITLE,
        f"Median of {reps} fresh interpreters per row (import time and peak RSS of the interpreter); `leadscore --help` "
        "is the whole process's wall time. Worker RSS: each scoring worker process with its models loaded, then after "
        "one `score_lead(explain=True)` per child (an explanation unpickles the native model and imports scikit-learn and shap).",
        tables=[
            Table(("import", "seconds", "peak RSS MiB", "heavy libraries loaded"), imports),
            Table(("command", "seconds"), [("leadscore --help", help_s)]),
            Table(("scoring worker process", "RSS MiB serving", "RSS MiB after an explanation", "training stack after"),
                  [(role, before[role], after[role], loaded.get(role, "")) for role in before]),
        ],
        targets=[
            Target("import leadscore.client.score_client", f"< {CLIENT_SECONDS:g} s", f"{client[1]:.2f} s", client[1] < CLIENT_SECONDS),
            Target("import leadscore.client.score_client", f"< {CLIENT_MIB} MiB RSS", f"{client[2]:.0f} MiB", client[2] < CLIENT_MIB),
            Target("leadscore --help", f"< {HELP_SECONDS:g} s", f"{help_s:.2f} s", help_s < HELP_SECONDS),
        ],
    )


def _import(module: str, reps: int) -> tuple[float, float, str]:
    runs = []
    for _ in range(reps):
        out = subprocess.run([sys.executable, "-c", PROBE.format(module=module)], capture_output=True, text=True, check=True, cwd=REPO)
        seconds, mib, heavy = out.stdout.split()
        runs.append((float(seconds), float(mib), heavy))
    return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs), runs[-1][2]


def _wall(argv: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, capture_output=True, check=True, cwd=REPO)
    return time.perf_counter() - started


def _worker_rss(ctx: BenchContext) -> tuple[dict[str, float], dict[str, float], dict[str, str]]:
    ctx.workers.restart()  # fresh children: none has explained anything yet
    _wait_until_warm(ctx)
    pids = ctx.workers.pids()["worker-scoring"]
    roles = _roles(pids)
    before = {role: memory_mib(pid)["rss"] for role, pid in roles}
    lead = ctx.leads(1, seed=5)[0]
    children = set(pids[1:])
    explained: set[int] = set()
    loaded: dict[str, str] = {}
    deadline = time.monotonic() + 120
    while not children <= explained and time.monotonic() < deadline:
        ctx.app.send_task("leadscore.score_lead", args=[lead], kwargs={"explain": True}, queue=ctx.settings.scoring_queue).get(timeout=60)
        for pong in [ctx.send("leadscore.ping", queue=ctx.settings.scoring_queue).get(timeout=30) for _ in range(2 * len(children))]:
            if pong["training_stack"]:
                explained.add(pong["pid"])
                loaded[f"child {pids.index(pong['pid'])}"] = ",".join(pong["training_stack"])
    after = {role: memory_mib(pid)["rss"] for role, pid in roles}
    return before, after, loaded
