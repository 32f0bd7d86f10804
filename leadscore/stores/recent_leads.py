"""The recently active leads of each model, so prewarming knows what to rescore.

    leadscore:recent:{<model>}:ids       sorted set: lead id -> last time it was scored or looked up
    leadscore:recent:{<model>}:features  hash: lead id -> its feature values (JSON; spec features only)

Nothing else about a lead is kept: its id and the numbers (or spec categories) it was scored on.
Writes are staged in the background writer's transaction, so a lead's id and features land
together. Size is capped at ``recent_leads_max`` per model: after each write the oldest ids
beyond the cap are popped and their features deleted.
"""

from __future__ import annotations

import json
import time
from typing import Any, cast

import redis

from leadscore.stores.optional_redis import OptionalRedis


def ids_key(model: str) -> str:
    return f"leadscore:recent:{{{model}}}:ids"


def features_key(model: str) -> str:
    return f"leadscore:recent:{{{model}}}:features"


class RecentLeads:
    def __init__(self, store: OptionalRedis, *, max_leads: int, window_seconds: int) -> None:
        self.store, self.max_leads, self.window = store, max_leads, window_seconds

    def stage(self, pipe: redis.client.Pipeline, model: str, seen: dict[str, dict[str, Any]], now: float) -> None:
        """Record leads (id -> feature values) as active at ``now``; one ZCARD result is appended."""
        pipe.zadd(ids_key(model), {lead_id: now for lead_id in seen})
        pipe.hset(features_key(model), mapping={lead_id: json.dumps(f, separators=(",", ":")) for lead_id, f in seen.items()})
        pipe.zcard(ids_key(model))

    def trim(self, model: str, size: int) -> None:
        """Drop the oldest leads beyond the cap (``size`` is the ZCARD staged above)."""
        if size <= self.max_leads:
            return

        def pop(r: redis.Redis) -> None:
            popped = cast(list[tuple[bytes, float]], r.zpopmin(ids_key(model), size - self.max_leads))  # bytes: no decode_responses
            if popped:
                r.hdel(features_key(model), *(lead_id for lead_id, _ in popped))

        self.store.call(pop)

    def active(self, model: str, now: float | None = None) -> list[tuple[str, dict[str, Any]]]:
        """Leads active within the window, newest first, with their features; forgets older ones."""
        now = time.time() if now is None else now
        cutoff = now - self.window

        def read(r: redis.Redis) -> list[tuple[str, dict[str, Any]]]:
            stale = r.zrangebyscore(ids_key(model), "-inf", f"({cutoff}")
            if stale:
                r.zrem(ids_key(model), *stale)
                r.hdel(features_key(model), *stale)
            ids = cast(list[bytes], r.zrevrangebyscore(ids_key(model), "+inf", cutoff, start=0, num=self.max_leads))
            payloads = r.hmget(features_key(model), ids) if ids else []
            return [(i.decode(), json.loads(p)) for i, p in zip(ids, payloads) if p is not None]

        return self.store.call(read) or []
