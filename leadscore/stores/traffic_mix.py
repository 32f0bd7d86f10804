"""The realized escalation rate and label-band shares of each model's recent traffic.

    leadscore:mix:{<model>}   list, newest first: "<version> <label> <0|1 escalated>", one per scored lead

The background writer stages one entry per scored lead beside its latency sample and keeps the
last ``MIX_SAMPLES``. ``leadscore status`` and the metrics exporter read them per version, next to
the shares the version's card expects (out of fold), which is what the drift check compares too.
"""

from __future__ import annotations

from collections import Counter
from operator import methodcaller
from typing import Any

import redis

from leadscore.stores.optional_redis import OptionalRedis
from ml_core.errors import LeadscoreError
from ml_core.registry import Registry

MIX_SAMPLES = 1000
_LABELS = ("hot", "warm", "cold")


def mix_key(model: str) -> str:
    return f"leadscore:mix:{{{model}}}"


def stage_mix(pipe: redis.client.Pipeline, model: str, results: list[dict[str, Any]]) -> None:
    pipe.lpush(mix_key(model), *(f"{r['model_version']} {r['label']} {int(bool(r['escalated']))}" for r in results))
    pipe.ltrim(mix_key(model), 0, MIX_SAMPLES - 1)


def traffic_mix(store: OptionalRedis, registry: Registry, models: list[str]) -> dict[str, dict[str, Any]]:
    """Per model and version seen in its last ``MIX_SAMPLES`` scores: leads, realized shares, and the
    card's expected shares (None for the rules, or a card that records none)."""
    mix: dict[str, dict[str, Any]] = {}
    for model in models:
        raw = store.call(methodcaller("lrange", mix_key(model), 0, -1)) or []
        entries = [e.decode().split(" ") for e in raw]
        by_version: dict[str, dict[str, Any]] = {}
        for version in dict.fromkeys(v for v, _, _ in entries):  # newest version first
            mine = [(label, esc) for v, label, esc in entries if v == version]
            labels = Counter(label for label, _ in mine)
            by_version[version] = {
                "leads": len(mine),
                "escalated": round(sum(esc == "1" for _, esc in mine) / len(mine), 4),
                "bands": {label: round(labels[label] / len(mine), 4) for label in _LABELS},
                "expected": _expected(registry, model, version),
            }
        if by_version:
            mix[model] = by_version
    return mix


def _expected(registry: Registry, model: str, version: str) -> dict[str, Any] | None:
    if not version.startswith("v"):
        return None  # the rules: no card
    try:
        decision = registry.card(model, version).get("decision")
    except LeadscoreError:
        return None
    if not decision:
        return None
    return {"escalated": decision["escalation"]["budget"], "bands": decision["bands"]["shares"]}
