"""Prometheus metrics: each worker serves its own, and one exporter serves the fleet's.

A worker started with ``--metrics-port`` (the stack gives each of its workers one) serves
``/metrics`` from its main process. Its children write their samples to a directory of this worker's
own (prometheus_client's multiprocess mode), which the main process reads at scrape time; no other
worker, host or container ever reads or writes it. prometheus_client picks its file backend from
``PROMETHEUS_MULTIPROC_DIR``, so the main process sets it before the pool forks and the children
import prometheus_client lazily, on their first count.

Figures that belong to the fleet, not to a worker, are served once per fleet by
``leadscore/exporter.py``.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from functools import cache
from pathlib import Path
from typing import Any

import click
from celery import Celery, bootsteps

from leadscore.settings import get_settings

log = logging.getLogger(__name__)

_LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_BATCH_BUCKETS = tuple(float(n) for n in range(1, 65))  # one bucket per size: bench/batching.py reads the distribution
_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"  # prometheus_client's name: its file backend writes there
_port: int | None = None  # set before the pool forks, so a child can say where its worker serves


def served_port() -> int | None:
    """The port this process's worker was started to serve ``/metrics`` on (``ping`` reports it)."""
    return _port


@cache
def _instruments() -> dict[str, Any] | None:
    """This process's instruments, or None in a worker that serves no metrics (they would go nowhere)."""
    if not os.environ.get(_DIR_VARIABLE):
        return None
    from prometheus_client import Counter, Histogram, values

    values.ValueClass = values.MultiProcessValue()

    return {
        "predictions": Counter("leadscore_predictions", "Leads scored", ["model", "served_by"]),
        "invalid": Counter("leadscore_invalid_leads", "Leads refused by validation", ["model"]),
        "fallbacks": Counter("leadscore_fallbacks", "Leads scored by the rule-based fallback", ["model"]),
        "escalations": Counter("leadscore_escalations", "Leads below their confidence threshold", ["model"]),
        "labels": Counter("leadscore_labels", "Scored leads by label band", ["model", "label"]),
        "latency": Histogram("leadscore_task_latency_seconds", "Time inside the worker per scoring task", ["model", "task"], buckets=_LATENCY_BUCKETS),
        "batch": Histogram("leadscore_score_batch_size", "score_lead requests scored together in one batch", buckets=_BATCH_BUCKETS),
    }


def record(model: str, task: str, results: list[dict[str, Any]], seconds: float) -> None:
    """Count one scoring task's results. Never raises: metrics must not fail scoring."""
    try:
        m = _instruments()
        if m is None:
            return
        scored = [r for r in results if "error" not in r]
        by = {"onnx": 0, "fallback": 0}
        for r in scored:
            by[r["served_by"]] = by.get(r["served_by"], 0) + 1
        for served_by, n in by.items():
            if n:
                m["predictions"].labels(model, served_by).inc(n)
        if by["fallback"]:
            m["fallbacks"].labels(model).inc(by["fallback"])
        for label in ("hot", "warm", "cold"):
            n = sum(1 for r in scored if r.get("label") == label)
            if n:
                m["labels"].labels(model, label).inc(n)
        escalated = sum(1 for r in scored if r.get("escalated"))
        if escalated:
            m["escalations"].labels(model).inc(escalated)
        if len(scored) < len(results):
            m["invalid"].labels(model).inc(len(results) - len(scored))
        m["latency"].labels(model, task).observe(seconds)
    except Exception:  # a metrics failure is never a scoring failure
        pass


def record_batch(size: int) -> None:
    """Count one micro-batch of ``score_lead`` requests. Never raises."""
    try:
        m = _instruments()
        if m is not None:
            m["batch"].observe(size)
    except Exception:  # a metrics failure is never a scoring failure
        pass


def child_exited() -> None:
    """Drop an exiting child's live gauges (counters and histograms keep their totals)."""
    if _instruments.cache_info().currsize and _instruments() is not None:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(os.getpid())


class WorkerMetrics(bootsteps.StartStopStep):
    """``celery worker --metrics-port N``: this worker serves its children's samples at ``/metrics``.

    The directory is set up when the step is built, before the pool forks, so every child inherits
    it; it is ``<run_dir>/metrics/<node name>``, emptied at start (samples of an earlier run of this
    node) and removed at shutdown. Without the option the worker serves nothing and its children count
    nothing.
    """

    label = "metrics"
    requires = ("celery.worker.components:Pool",)  # stopped after the pool: children count until they exit

    def __init__(self, parent: Any, metrics_port: int | None = None, **options: Any) -> None:
        global _port
        super().__init__(parent, **options)
        _port = metrics_port or None
        self.port = metrics_port or 0
        self.server: Any = None
        self.path: Path | None = None
        os.environ.pop(_DIR_VARIABLE, None)  # a directory named by the environment would be shared
        if metrics_port:
            self.path = Path(get_settings().run_dir) / "metrics" / re.sub(r"[^\w.@-]", "_", parent.hostname)
            shutil.rmtree(self.path, ignore_errors=True)
            self.path.mkdir(parents=True)
            os.environ[_DIR_VARIABLE] = str(self.path)

    def start(self, parent: Any) -> None:
        if self.path is None:
            return
        from prometheus_client import CollectorRegistry, start_http_server
        from prometheus_client.multiprocess import MultiProcessCollector

        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(self.path))
        address = get_settings().metrics_address
        try:
            self.server, _ = start_http_server(self.port, addr=address, registry=registry)
        except OSError as exc:  # metrics never stop a worker from scoring
            log.error("worker metrics not served at %s:%s: %s", address, self.port, exc)
            return
        log.info("worker metrics at http://%s:%s/metrics", address, self.port)

    def stop(self, parent: Any) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
        if self.path is not None:
            shutil.rmtree(self.path, ignore_errors=True)

    terminate = stop  # a cold shutdown sends this instead


def install(app: Celery) -> None:
    """Give ``celery worker`` its ``--metrics-port`` option and the step that serves it."""
    app.user_options["worker"].add(
        click.Option(["--metrics-port"], type=int, default=None, help="Serve this worker's Prometheus metrics at /metrics on this port.")
    )
    app.steps["worker"].add(WorkerMetrics)
