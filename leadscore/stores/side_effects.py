"""What follows a score, done off the scoring path by a background writer.

After a worker scores a lead, or a ScoreClient finds it in the cache or misses, a ``SideEffects``
batch does, in one cache-Redis transaction and one events-Redis round trip:

- a fresh model score (not a fallback one) becomes a cache entry, and the model's served version
  is published; hits and misses are counted per model;
- the lead's id and feature values are recorded as recently active (for prewarming); a scored
  lead's latency, label and escalation join its model's recent samples (``leadscore status``);
- events: ``lead.scored`` (worker) or ``lead.cache_hit`` (client), and ``lead.escalated``;
- an escalated lead is sent to the deep tier. Hand-offs are deduplicated: once per lead, model
  version and feature digest within the cache TTL (ledger ``leadscore:escalation:{<model>}:<id>``),
  so a lead re-read from the cache while nothing changed is not reviewed twice. If the cache
  Redis is down the ledger is skipped and the lead is handed off anyway.

None of it can block or fail scoring: Redis errors only skip the cache or events for a few
seconds (``OptionalRedis``), a full queue drops side effects, and a broker error while handing
off is logged with the lead id.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import redis

from leadscore.settings import Settings
from leadscore.stores.cache import PredictionCache
from leadscore.stores.event_types import EventType
from leadscore.stores.events import EventStreams, event_fields
from leadscore.stores.latency import stage_latency
from leadscore.stores.optional_redis import OptionalRedis
from leadscore.stores.recent_leads import RecentLeads
from leadscore.stores.traffic_mix import stage_mix
from leadscore.stores.write_behind import WriteBehind
from ml_core.cache_entry import cacheable
from ml_core.spec import ModelSpec

log = logging.getLogger(__name__)
DEEP_TASK = "leadscore.deep_score"
_EVENT = {"scored": EventType.LEAD_SCORED, "hit": EventType.LEAD_CACHE_HIT}


@dataclass(frozen=True)
class ScoreRecord:
    """What one score or cache lookup leaves for the side effects (a lead's business outcome is
    ``ml_core.outcomes``)."""

    kind: Literal["scored", "hit", "miss"]
    model: str
    digest: str
    result: dict[str, Any] = field(default_factory=dict)
    features: dict[str, Any] = field(default_factory=dict)
    """The lead's spec feature values (nothing else it carried)."""


def lead_features(spec: ModelSpec, lead: dict[str, Any]) -> dict[str, Any]:
    """The lead's values of its spec's features, as plain JSON values (a NumPy scalar is one too)."""
    return {name: _plain(lead[name]) for name in spec.feature_names if name in lead}


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def escalation_key(model: str, lead_id: str) -> str:
    return f"leadscore:escalation:{{{model}}}:{lead_id}"


class SideEffects:
    def __init__(self, settings: Settings, send_task: Callable[..., Any]) -> None:
        cache_store = OptionalRedis(
            settings.cache_url, timeout=settings.cache_timeout_seconds, retry_after=settings.cache_retry_after_seconds, role="cache"
        )
        events_url = settings.events_url or settings.cache_url
        events_store = cache_store if events_url == settings.cache_url else OptionalRedis(
            events_url, timeout=settings.cache_timeout_seconds, retry_after=settings.cache_retry_after_seconds, role="events"
        )
        self.settings, self.send_task = settings, send_task
        self.cache = PredictionCache(cache_store, settings.cache_ttl_seconds)
        self.recent = RecentLeads(cache_store, max_leads=settings.recent_leads_max, window_seconds=settings.recent_leads_window_seconds)
        self.events = EventStreams(events_store, settings.events_maxlen)
        self.writer: WriteBehind[ScoreRecord] = WriteBehind(self.flush, max_pending=settings.write_behind_max_pending, name="side-effects")

    def submit(self, record: ScoreRecord) -> None:
        self.submit_many([record])

    def submit_many(self, records: list[ScoreRecord]) -> None:
        """A batch's records, queued together: they share the writer's next round trips."""
        taken = self.writer.submit_many(records)
        if taken < len(records):
            log.warning("side effects of %d leads dropped: %d already waiting", len(records) - taken, self.writer.max_pending)

    def drain(self, timeout: float) -> bool:
        return self.writer.drain(timeout)

    def flush(self, records: list[ScoreRecord]) -> None:
        now = time.time()
        escalated = [o for o in records if o.kind != "miss" and o.result.get("escalated")]
        written = self.cache.store.call(lambda r: self._write_cache(r, records, escalated, now))
        sizes, previous = written if written is not None else ({}, [None] * len(escalated))
        for model, size in sizes.items():
            self.recent.trim(model, size)
        handoffs = [o for o, before in zip(escalated, previous) if before != _ledger_value(o)]
        events = [(_EVENT[o.kind], event_fields(_EVENT[o.kind], o.result, now)) for o in records if o.kind in _EVENT]
        events += [(EventType.LEAD_ESCALATED, event_fields(EventType.LEAD_ESCALATED, o.result, now)) for o in handoffs]
        self.events.publish(events)
        for o in handoffs:
            self._hand_off(o)

    def _write_cache(
        self, r: redis.Redis, records: list[ScoreRecord], escalated: list[ScoreRecord], now: float
    ) -> tuple[dict[str, int], list[str | None]]:
        pipe = r.pipeline(transaction=True)  # a lead's recency and features land together
        versions: dict[str, str] = {}
        active: dict[str, dict[str, dict[str, Any]]] = {}
        scored: dict[str, list[dict[str, Any]]] = {}
        for o in records:
            if o.kind == "miss":
                self.cache.stage_count(pipe, o.model, "misses")
                continue
            if o.kind == "hit":
                self.cache.stage_count(pipe, o.model, "hits")
            else:
                scored.setdefault(o.model, []).append(o.result)
                if cacheable(o.result):
                    self.cache.stage_entry(pipe, o.model, o.result["model_version"], o.digest, o.result)
                    versions[o.model] = o.result["model_version"]
            active.setdefault(o.model, {})[str(o.result["lead_id"])] = o.features
        for model, results in scored.items():  # one push and one trim per model and flush, not per lead
            stage_latency(pipe, model, [r["latency_ms"] for r in results])
            stage_mix(pipe, model, results)
        for model, version in versions.items():
            self.cache.stage_version(pipe, model, version)
        size_at: dict[str, int] = {}
        for model, seen in active.items():
            self.recent.stage(pipe, model, seen, now)
            size_at[model] = len(pipe) - 1
        ledger_at = len(pipe)
        for o in escalated:
            pipe.set(escalation_key(o.model, str(o.result["lead_id"])), _ledger_value(o), ex=self.settings.cache_ttl_seconds, get=True)
        replies = pipe.execute()
        previous = [v.decode() if isinstance(v, bytes) else v for v in replies[ledger_at:]]
        return {model: int(replies[i]) for model, i in size_at.items()}, previous

    def _hand_off(self, o: ScoreRecord) -> None:
        lead = {"id": o.result["lead_id"], **o.features}
        fast = {k: v for k, v in o.result.items() if k not in ("explanation", "explanation_error")}
        try:
            self.send_task(DEEP_TASK, args=[lead, fast], kwargs={"model": o.model}, queue=self.settings.deep_queue)
        except Exception as exc:  # a broker error must not reach scoring; it is logged with the id
            log.error("escalated lead %s not handed to the deep tier: %s", o.result["lead_id"], exc.__class__.__name__)


def _ledger_value(o: ScoreRecord) -> str:
    return f"{o.result['model_version']}:{o.digest}"
