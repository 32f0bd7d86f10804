"""The benchmark's own workers: the stack's worker commands, with the bench tasks included.

``leadscore.cli.stack.commands`` gives the exact argv the local stack and docker-compose run (pool,
concurrency, prefetch per queue); the bench only renames the nodes, gives them free metrics ports and
adds ``-I bench.yardstick_tasks``.
Memory is read from ``/proc``: VmRSS now, VmHWM (peak resident set) since the process started.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from celery import Celery

from leadscore.cli.stack import commands
from leadscore.settings import Settings

WORKERS = ("worker-scoring", "worker-batch")
REPO = Path(__file__).resolve().parent.parent


def worker_argv(settings: Settings, name: str, metrics_port: int) -> list[str]:
    argv = list(commands(settings)[name])
    argv[argv.index("-n") + 1] = f"bench-{name}-{os.getpid()}@%h"
    argv[argv.index("--metrics-port") + 1] = str(metrics_port)
    return [str(Path(sys.executable).parent / argv[0]), *argv[1:], "-I", "bench.yardstick_tasks"]


class WorkerPool:
    """Both workers as subprocesses in sessions of their own, so stopping them reaches their children."""

    def __init__(self, settings: Settings, env: dict[str, str], app: Celery, log_dir: Path) -> None:
        self.settings, self.env, self.app, self.log_dir = settings, env, app, log_dir
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.metrics_ports = {name: _free_port() for name in WORKERS}  # not the stack's: one may be running

    def start(self) -> None:
        """Start both and return once a real task has gone through each queue."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for name in WORKERS:
            with open(self.log_dir / f"{name}.log", "ab") as log:
                self.procs[name] = subprocess.Popen(
                    worker_argv(self.settings, name, self.metrics_ports[name]),
                    env=self.env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                )
        for queue in (self.settings.scoring_queue, self.settings.batch_queue):
            _wait_for_queue(self.app, queue, self.procs, self.log_dir)

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        self.procs = {}

    def restart(self) -> None:
        """Fresh processes, so peak memory (VmHWM) counts only what comes next."""
        self.stop()
        self.start()

    def pids(self) -> dict[str, list[int]]:
        return {name: process_tree(proc.pid) for name, proc in self.procs.items()}


def _wait_for_queue(app: Celery, queue: str, procs: dict[str, subprocess.Popen[bytes]], log_dir: Path, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for name, proc in procs.items():
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}; see {log_dir / (name + '.log')}")
        try:
            app.send_task("leadscore.ping", queue=queue).get(timeout=2)
            return
        except Exception:  # not consuming yet; bounded by the deadline
            continue
    raise TimeoutError(f"no worker consumed {queue} within {timeout:.0f}s; see {log_dir}")


def process_tree(pid: int) -> list[int]:
    """A worker's main process and its pool children."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return [pid]
    return [pid, *map(int, children)]


def memory_mib(pid: int) -> dict[str, float]:
    """``rss`` (resident now) and ``peak`` (VmHWM, highest resident since start), in MiB."""
    fields: dict[str, Any] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                fields[key] = int(value.split()[0]) / 1024
    except OSError:
        return {"rss": float("nan"), "peak": float("nan")}
    return {"rss": fields.get("VmRSS", float("nan")), "peak": fields.get("VmHWM", float("nan"))}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
