"""Scoring events on Redis Streams, one stream per type, each capped near ``events_maxlen``.

    leadscore:events:lead.scored     a worker scored a lead (prewarm rescoring publishes nothing)
    leadscore:events:lead.escalated  a scored or cached lead's confidence was below its threshold
    leadscore:events:lead.cache_hit  a web service's ScoreClient served a lead from the cache
    leadscore:events:lead.handoff    the built-in follow-up recorded an escalated lead's hand-off

Streams, not pub/sub: an entry waits for consumers that are not listening yet (``XREAD`` from an
id, or consumer groups). Every entry is flat string fields, schema version 1:
``schema, type, lead_id, model, model_version, score, probability, confidence, escalated, ts``
(``ts`` ISO 8601 UTC with milliseconds); a hand-off adds ``handoff``, its JSON. No lead data
beyond the id and numbers. Publishing happens on the background writer: it never blocks scoring,
and a failure only loses events.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any, cast

import redis
from redis.typing import KeyT, StreamIdT

from leadscore.stores.event_types import EventType
from leadscore.stores.optional_redis import OptionalRedis
from ml_core.timestamps import utc_iso

SCHEMA_VERSION = 1


EVENT_TYPES = (EventType.LEAD_SCORED, EventType.LEAD_ESCALATED, EventType.LEAD_CACHE_HIT)
_NUMBERS = ("score", "probability", "confidence")
_BLOCK_MS = 5000  # one XREAD waits at most this long, so the socket timeout stays short


def stream_key(event_type: str) -> str:
    return f"leadscore:events:{event_type}"


def event_fields(event_type: EventType, result: dict[str, Any], now: float | None = None) -> dict[str, str]:
    return {
        "schema": str(SCHEMA_VERSION),
        "type": event_type,
        "lead_id": str(result["lead_id"]),
        "model": result["model"],
        "model_version": result["model_version"],
        **{k: repr(float(result[k])) for k in _NUMBERS},
        "escalated": "1" if result.get("escalated") else "0",
        "ts": utc_iso(now),
    }


def decode(entry_id: bytes | str, fields: dict[bytes, bytes]) -> dict[str, Any]:
    """A stream entry as typed JSON: numbers as floats, ``escalated`` as a boolean."""
    event: dict[str, Any] = {k.decode(): v.decode() for k, v in fields.items()}
    event["id"] = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    event["schema"] = int(event["schema"])
    for k in _NUMBERS:
        if k in event:
            event[k] = float(event[k])
    if "escalated" in event:
        event["escalated"] = event["escalated"] == "1"
    if "handoff" in event:
        event["handoff"] = json.loads(event["handoff"])
    return event


class EventStreams:
    def __init__(self, store: OptionalRedis, maxlen: int) -> None:
        self.store, self.maxlen = store, maxlen

    def publish(self, events: list[tuple[EventType, dict[str, str]]]) -> bool:
        """Append ``(type, fields)`` pairs in one round trip; ``False`` if the events Redis is down."""
        if not events:
            return True

        def write(r: redis.Redis) -> bool:
            pipe = r.pipeline(transaction=False)
            for event_type, fields in events:
                pipe.xadd(stream_key(event_type), fields, maxlen=self.maxlen, approximate=True)  # type: ignore[arg-type]
            pipe.execute()
            return True

        return bool(self.store.call(write))


_Entry = tuple[bytes, dict[bytes, bytes]]
"""A stream entry as redis-py returns it: its id and its fields."""


def tail(url: str, types: tuple[str, ...], *, count: int, timeout: float, from_start: bool = False) -> Iterator[dict[str, Any]]:
    """Entries as they arrive (or from the start of each stream), until ``count`` or ``timeout`` s."""
    client = redis.Redis.from_url(url, socket_timeout=_BLOCK_MS / 1000 + 5, socket_connect_timeout=5)
    positions: dict[KeyT, StreamIdT] = {stream_key(t): "0-0" if from_start else "$" for t in types}
    if not from_start:  # "$" must be pinned once: re-reading with "$" would skip entries between calls
        for key in positions:
            last = cast(list[_Entry], client.xrevrange(key, count=1))  # bytes: no decode_responses
            positions[key] = last[0][0].decode() if last else "0-0"
    seen, deadline = 0, time.monotonic() + timeout
    while seen < count:
        left = deadline - time.monotonic()
        if left <= 0:
            return
        block = max(1, min(_BLOCK_MS, int(left * 1000)))
        batch = cast(list[tuple[bytes, list[_Entry]]] | None, client.xread(positions, count=min(count - seen, 1000), block=block))
        for stream, entries in batch or []:
            for entry_id, fields in entries:
                positions[stream.decode()] = entry_id.decode()
                yield decode(entry_id, fields)
                seen += 1
                if seen >= count:
                    return
