"""SideEffects against a real Redis, in this process: hand-off dedupe, recency cap, counters.

The deep-tier hand-off is recorded through ``send_task``, the seam SideEffects takes (a worker
passes Celery's); the end-to-end path through a worker is in test_cache_events.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis

from leadscore.settings import Settings
from leadscore.stores.side_effects import ScoreRecord, SideEffects
from tests.conftest import TEST_REDIS

MODEL = "lead_scorer"
CACHE = f"{TEST_REDIS}/9"  # 10-15 are the session's and other tests'


@pytest.fixture
def sent(redis_available: None) -> Iterator[tuple[SideEffects, list[tuple[str, dict[str, Any]]]]]:
    redis.Redis.from_url(CACHE).flushdb()
    calls: list[tuple[str, dict[str, Any]]] = []
    effects = SideEffects(
        Settings(cache_url=CACHE, recent_leads_max=3), lambda name, **options: calls.append((name, options))
    )
    yield effects, calls
    redis.Redis.from_url(CACHE).flushdb()


def scored(lead_id: str, digest: str = "d1", escalated: bool = True, version: str = "v1") -> ScoreRecord:
    result = {"lead_id": lead_id, "score": 55.0, "probability": 0.55, "label": "warm", "confidence": 0.55,
              "escalated": escalated, "model": MODEL, "model_version": version, "served_by": "onnx", "latency_ms": 0.5}
    return ScoreRecord("scored", MODEL, digest, result, {"timeline_urgency": 0.5})


def test_an_escalated_lead_is_handed_off_once_per_version_and_features(sent: tuple[SideEffects, list[Any]]) -> None:
    effects, calls = sent
    effects.flush([scored("a"), scored("b", escalated=False)])
    effects.flush([scored("a")])  # the same lead, version and features again: no second review
    assert [(name, options["args"][0]["id"]) for name, options in calls] == [("leadscore.deep_score", "a")]
    assert calls[0][1]["queue"] == "deep" and calls[0][1]["args"][0]["timeline_urgency"] == 0.5
    effects.flush([scored("a", digest="d2"), scored("a", digest="d2", version="v2")])  # new features, then a new version
    assert len(calls) == 3


def test_recent_leads_are_capped_newest_first_and_counters_add_up(sent: tuple[SideEffects, list[Any]]) -> None:
    effects, _ = sent
    for i in range(5):
        effects.flush([scored(f"lead-{i}", escalated=False)])
    assert [lead_id for lead_id, _ in effects.recent.active(MODEL)] == ["lead-4", "lead-3", "lead-2"]
    assert redis.Redis.from_url(CACHE).hlen(f"leadscore:recent:{{{MODEL}}}:features") == 3
    effects.flush([ScoreRecord("miss", MODEL, "d9"), ScoreRecord("miss", MODEL, "d9"), ScoreRecord("hit", MODEL, "d1", scored("x").result)])
    assert effects.cache.stats()[MODEL] == {"hits": 1, "misses": 2}


def test_fallback_scores_are_not_cached(sent: tuple[SideEffects, list[Any]]) -> None:
    effects, _ = sent
    rules = scored("r", escalated=False)
    rules.result.update(served_by="fallback", model_version="rules")
    effects.flush([rules])
    assert effects.cache.lookup(MODEL, "d1", "r") is None
    effects.flush([scored("s", escalated=False)])
    assert effects.cache.lookup(MODEL, "d1", "someone-else")["lead_id"] == "someone-else"  # type: ignore[index]
