"""Prometheus metrics of the workers, in multiprocess mode.

Every worker child on a host writes its samples to files in ``metrics_dir``; one exporter process
per host (``leadscore metrics``, a process of the stack) serves them all at ``/metrics``, with
cache hit and miss counters and the recent traffic's escalation rate and band shares (with the
card's expected values, ``leadscore/stores/traffic_mix.py``) read from Redis at scrape time. prometheus_client picks its file
backend when it is first imported, so this module sets ``PROMETHEUS_MULTIPROC_DIR`` and only then
imports it, lazily, inside the worker child.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

from leadscore.settings import Settings, get_settings

_LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_BATCH_BUCKETS = tuple(float(n) for n in range(1, 65))  # one bucket per size: bench/batching.py reads the distribution


def _multiproc_dir(settings: Settings) -> Path:
    path = Path(settings.metrics_dir or Path(settings.run_dir) / "metrics")
    path.mkdir(parents=True, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)  # read by prometheus_client on import
    return path


def _process_id() -> str:
    # host and pid: pids repeat across containers, should a directory ever be shared by mistake.
    # prometheus_client asks on every increment (to notice a fork): the host is looked up once per
    # process, not per call.
    return _process_ids(os.getpid())


@cache
def _process_ids(pid: int) -> str:
    return f"{socket.gethostname()}_{pid}"


@cache
def _instruments() -> dict[str, Any]:
    _multiproc_dir(get_settings())
    from prometheus_client import Counter, Histogram, values

    values.ValueClass = values.MultiProcessValue(_process_id)

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
        _instruments()["batch"].observe(size)
    except Exception:  # a metrics failure is never a scoring failure
        pass


def child_exited() -> None:
    """Drop an exiting child's live gauges (counters and histograms keep their totals)."""
    if _instruments.cache_info().currsize:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(_process_id())


def serve(settings: Settings) -> None:
    """Run the host's exporter: every child's samples, plus the cache counters from Redis."""
    path = _multiproc_dir(settings)
    for stale in path.glob("*.db"):  # samples of processes from before this start
        stale.unlink()
    from prometheus_client import CollectorRegistry, start_http_server
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
    from prometheus_client.multiprocess import MultiProcessCollector

    from leadscore.stores.cache import cache_counts, store_of
    from leadscore.stores.state import registry as state_registry
    from leadscore.stores.traffic_mix import traffic_mix
    from ml_core.spec import available_models

    class CacheCollector:
        def collect(self) -> Iterator[Metric]:
            family = CounterMetricFamily("leadscore_cache_lookups", "Prediction cache lookups by web services", labels=["model", "outcome"])
            for model, counts in cache_counts(settings).items():
                for outcome, n in counts.items():
                    family.add_metric([model, outcome], n)
            yield family

    class TrafficCollector:
        def collect(self) -> Iterator[Metric]:
            recent_esc = GaugeMetricFamily("leadscore_recent_escalation_rate", "Share of the last scored leads escalated", labels=["model", "version"])
            recent_band = GaugeMetricFamily(
                "leadscore_recent_band_share", "Share of the last scored leads in each label band", labels=["model", "version", "band"]
            )
            card_esc = GaugeMetricFamily("leadscore_card_escalation_rate", "Share escalated out of fold, from the version's card", labels=["model", "version"])
            card_band = GaugeMetricFamily("leadscore_card_band_share", "Band share out of fold, from the version's card", labels=["model", "version", "band"])
            mix = traffic_mix(store_of(settings), state_registry(settings), available_models(settings.models_dir))
            for model, versions in mix.items():
                for version, t in versions.items():
                    recent_esc.add_metric([model, version], t["escalated"])
                    for band, share in t["bands"].items():
                        recent_band.add_metric([model, version, band], share)
                    if t["expected"]:
                        card_esc.add_metric([model, version], t["expected"]["escalated"])
                        for band, share in t["expected"]["bands"].items():
                            card_band.add_metric([model, version, band], share)
            yield from (recent_esc, recent_band, card_esc, card_band)

    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(path))
    registry.register(CacheCollector())
    registry.register(TrafficCollector())
    start_http_server(settings.metrics_port, addr=settings.metrics_address, registry=registry)
