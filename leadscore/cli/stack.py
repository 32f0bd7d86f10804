"""The local stack: the same process commands ``docker-compose.yml`` runs, started detached.

Each queue gets its own worker so prefetch fits its work: scoring tasks are short (prefetch 4
keeps children busy), batch and training tasks are long (prefetch 1, so one slow chunk never
holds others hostage). The training worker has two children so outcomes, rollout commands and
drift checks are not stuck behind an hour-long retrain (two retrains of one model never run
together: ``leadscore/tasks/retrain.py``). The deep tier (escalated leads, explanations) has its own worker too: it
loads native models and shap, which scoring children never need, and a backlog of reviews
never delays a score. One child is enough for a few hundred explanations a second.

Each worker serves its own Prometheus metrics (``--metrics-port``: the port after the fleet
exporter's, one per worker); the ``metrics`` process serves the fleet's, read from Redis.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from leadscore.settings import Settings

CELERY = ["celery", "-A", "leadscore"]


def commands(settings: Settings) -> dict[str, list[str]]:
    beat_file = str(Path(settings.run_dir) / "celerybeat-schedule")
    def worker(queue: str, node: str, children: int, prefetch: int, metrics_port: int) -> list[str]:
        return [
            *CELERY, "worker", "--loglevel", "INFO", "-E", "-Q", queue, "-n", f"{node}@%h", "-c", str(children),
            "--prefetch-multiplier", str(prefetch), "--metrics-port", str(metrics_port),
        ]

    port = settings.metrics_port
    return {
        "worker-scoring": worker(settings.scoring_queue, "scoring", 2, 4, port + 1),
        "worker-batch": worker(settings.batch_queue, "batch", 2, 1, port + 2),
        "worker-training": worker(settings.training_queue, "training", 2, 1, port + 3),
        "worker-deep": worker(settings.deep_queue, "deep", 1, 4, port + 4),
        "beat": [*CELERY, "beat", "--loglevel", "INFO", "--schedule", beat_file],
        "metrics": ["leadscore", "metrics"],
        "flower": [*CELERY, "flower", f"--address={settings.flower_address}", f"--port={settings.flower_port}"],
    }


def start(settings: Settings) -> dict[str, int]:
    run_dir = Path(settings.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    started = {}
    bin_dir = Path(sys.executable).parent
    for name, argv in commands(settings).items():
        if _alive(run_dir / f"{name}.pid"):
            continue
        log = open(run_dir / f"{name}.log", "ab")  # noqa: SIM115 - handed to the child, closed below
        proc = subprocess.Popen(
            [str(bin_dir / argv[0]), *argv[1:]], stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        (run_dir / f"{name}.pid").write_text(str(proc.pid))
        started[name] = proc.pid
    return started


def stop(settings: Settings, timeout: float = 20.0) -> list[str]:
    run_dir = Path(settings.run_dir)
    stopped = []
    for name in commands(settings):
        pid_file = run_dir / f"{name}.pid"
        pid = _alive(pid_file)
        if pid:
            os.killpg(pid, signal.SIGTERM)  # warm shutdown: workers finish what they hold
            deadline = time.monotonic() + timeout
            while _alive(pid_file) and time.monotonic() < deadline:
                time.sleep(0.2)
            if _alive(pid_file):
                os.killpg(pid, signal.SIGKILL)
            stopped.append(name)
        pid_file.unlink(missing_ok=True)
    return stopped


def status(settings: Settings) -> dict[str, int | None]:
    return {name: _alive(Path(settings.run_dir) / f"{name}.pid") for name in commands(settings)}


def _alive(pid_file: Path) -> int | None:
    try:
        pid = int(pid_file.read_text())
        os.kill(pid, 0)
    except (FileNotFoundError, ValueError, ProcessLookupError):
        return None
    try:  # a zombie child of ours has exited; reap it so it stops looking alive
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            return None
    except ChildProcessError:
        pass
    return pid
