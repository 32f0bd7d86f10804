"""Each model's last in-worker latencies, a capped Redis list written with the side effects and
read by ``leadscore status``."""

from __future__ import annotations

from operator import methodcaller

import numpy as np
import redis

from leadscore.stores.optional_redis import OptionalRedis

LATENCY_SAMPLES = 1000


def latency_key(model: str) -> str:
    return f"leadscore:latency:{{{model}}}"


def stage_latency(pipe: redis.client.Pipeline, model: str, latency_ms: list[float]) -> None:
    """Keep the last ``LATENCY_SAMPLES`` in-worker latencies of a model, for status percentiles."""
    pipe.lpush(latency_key(model), *latency_ms)
    pipe.ltrim(latency_key(model), 0, LATENCY_SAMPLES - 1)


def latency_percentiles(store: OptionalRedis, model: str) -> dict[str, float] | None:
    """p50 and p95 of the kept samples in milliseconds, or None without samples (or Redis)."""
    raw = store.call(methodcaller("lrange", latency_key(model), 0, -1)) or []
    if not raw:
        return None
    values = np.array([float(v) for v in raw])
    p50, p95 = (round(float(np.percentile(values, q)), 3) for q in (50, 95))
    return {"p50_ms": p50, "p95_ms": p95, "samples": len(values)}
