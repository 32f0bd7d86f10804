"""A worker's Prometheus counters, read the way Prometheus reads them: a scrape of its /metrics."""

from __future__ import annotations

import urllib.request

from prometheus_client.parser import text_string_to_metric_families


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        return response.read().decode()


def sample(port: int, name: str, labels: dict[str, str]) -> float:
    """One sample's value from the worker serving metrics at ``port``; 0 before anything was counted."""
    for family in text_string_to_metric_families(scrape(port)):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return s.value
    return 0.0


def invalid_count(port: int, model: str) -> float:
    """How many leads of ``model`` the worker serving metrics at ``port`` refused by validation so far."""
    return sample(port, "leadscore_invalid_leads_total", {"model": model})
