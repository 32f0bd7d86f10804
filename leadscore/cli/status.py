"""``leadscore status``: what is alive and how it serves, proven by real tasks.

A worker counts as alive only when a ``ping`` task it consumed from each queue comes back, since
workers have been known to answer ``inspect ping`` while no longer consuming.
"""

from __future__ import annotations

import time
from typing import Any

from celery import Celery

from leadscore import routes
from leadscore.settings import Settings
from leadscore.stores.cache import cache_counts, store_of
from leadscore.stores.latency import latency_percentiles
from leadscore.stores.state import registry as state_registry
from leadscore.stores.traffic_mix import traffic_mix


def queue_depths(app: Celery, queues: list[str]) -> dict[str, int | None]:
    """Messages waiting per queue; ``None`` only for a RabbitMQ queue nobody has declared yet."""
    with app.connection_for_read() as conn:
        return {queue: _depth(conn, queue) for queue in queues}


def _depth(conn: Any, queue: str) -> int | None:
    channel = conn.channel()  # one per queue: a failed passive declare closes an AMQP channel
    try:
        if conn.transport.driver_type == "redis":
            # an empty Redis queue is no key at all, so a passive declare of it fails: count instead
            return int(channel._size(queue))
        return int(channel.queue_declare(queue=queue, passive=True).message_count)
    except (*conn.channel_errors, *conn.connection_errors):
        return None
    finally:
        channel.close()


def gather(app: Celery, settings: Settings, timeout: float = 5.0) -> dict[str, Any]:
    queues = routes.queues(settings)
    pending = {q: app.send_task("leadscore.ping", queue=q, expires=timeout) for q in queues}
    deadline = time.monotonic() + timeout
    workers: dict[str, Any] = {}
    for queue, result in pending.items():
        try:
            pong = result.get(timeout=max(0.1, deadline - time.monotonic()))
            workers[queue] = {"alive": True, "pid": pong["pid"], "hostname": pong["hostname"], "models": pong["models"],
                              "metrics_port": pong.get("metrics_port")}  # .get: a worker of an earlier release
        except Exception as exc:  # any failure means no worker proved itself on this queue
            workers[queue] = {"alive": False, "error": exc.__class__.__name__}
    store = store_of(settings)
    counts = cache_counts(settings)
    models = sorted(set(counts) | {m for w in workers.values() for m in w.get("models", {})})
    latency = {model: found for model in models if (found := latency_percentiles(store, model)) is not None}
    cache = {
        model: {**c, "hit_rate": round(c["hits"] / (c["hits"] + c["misses"]), 4) if c["hits"] + c["misses"] else None}
        for model, c in counts.items()
    }
    mix = traffic_mix(store, state_registry(settings), models)
    return {"workers": workers, "queues": queue_depths(app, queues), "cache": cache, "latency": latency, "traffic": mix}
