"""The session workers' Prometheus counters, read the way a scrape reads them (multiprocess files)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector

from leadscore.settings import get_settings
from leadscore.worker.metrics import _multiproc_dir


def invalid_count(model: str) -> float:
    """How many leads of ``model`` the workers refused by validation so far."""
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(_multiproc_dir(get_settings())))
    return registry.get_sample_value("leadscore_invalid_leads_total", {"model": model}) or 0.0
