"""What the lifecycle needs from each score, written off the scoring path.

    leadscore:snapshots:{<model>}:<subject>   list, newest first: {"v": version, "ts": epoch s, "f": features}
                                              capped at ``snapshot_history``, expires ``snapshot_ttl_days``
                                              after the subject's last score; the subject is the lead id,
                                              or ``["<lead id>","<property id>"]`` for a pair model
    leadscore:drift:{<model>}:sample          list, newest first: {"p": probability, "f": features,
                                              "v": version}, the last ``drift_sample_size`` scored leads
    leadscore:events:model.shadow             stream: champion and shadow challenger on the same lead

Snapshots are what ``record_outcome`` stores with a label (no training/serving skew); the drift
sample is what ``drift_check`` compares with the champion's training data. Both live in the
non-evicting Redis of ``snapshots_url`` (default: ``lock_url``'s, on the broker instance), never
in the evicting cache. A background writer (``WriteBehind``) flushes them in one pipeline per
batch, so scoring never waits; a Redis outage only loses snapshots of that moment (an outcome for
such a lead is still recorded, without features).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any

import redis

from leadscore.settings import Settings
from leadscore.stores.event_types import EventType
from leadscore.stores.events import EventStreams
from leadscore.stores.optional_redis import OptionalRedis
from leadscore.stores.write_behind import WriteBehind
from ml_core.outcomes import Snapshot

log = logging.getLogger(__name__)
SHADOW_EVENT = EventType.MODEL_SHADOW


def snapshots_key(model: str, subject: str) -> str:
    return f"leadscore:snapshots:{{{model}}}:{subject}"


def drift_key(model: str) -> str:
    return f"leadscore:drift:{{{model}}}:sample"


@dataclass(frozen=True)
class Scored:
    model: str
    subject: str
    """The lead id, or ``ml_core.outcomes.subject(lead, property)`` for a pair model."""
    version: str
    probability: float
    features: dict[str, Any]
    shadow: dict[str, str] | None = None
    """Fields of a ``model.shadow`` event when a challenger scored the lead in shadow."""


class Snapshots:
    def __init__(self, settings: Settings, events: EventStreams) -> None:
        self.settings, self.events = settings, events
        self.store = OptionalRedis(settings.snapshots_url or settings.lock_url, timeout=1.0,
                                   retry_after=settings.cache_retry_after_seconds, role="snapshots")
        self.writer: WriteBehind[Scored] = WriteBehind(self.flush, max_pending=settings.write_behind_max_pending, name="snapshots")
        # reads for record_outcome must fail loudly, not come back empty: a plain client
        self.strict = redis.Redis.from_url(settings.snapshots_url or settings.lock_url, socket_timeout=5, socket_connect_timeout=5)

    def submit(self, scored: Scored) -> None:
        self.submit_many([scored])

    def submit_many(self, scored: list[Scored]) -> None:
        taken = self.writer.submit_many(scored)
        if taken < len(scored):
            log.warning("snapshots of %d subjects dropped: %d already waiting", len(scored) - taken, self.writer.max_pending)

    def drain(self, timeout: float) -> bool:
        return self.writer.drain(timeout)

    def flush(self, batch: list[Scored]) -> None:
        now = time.time()
        ttl = self.settings.snapshot_ttl_days * 86400

        def write(r: redis.Redis) -> None:
            pipe = r.pipeline(transaction=False)
            for s in batch:
                key = snapshots_key(s.model, s.subject)
                pipe.lpush(key, json.dumps({"v": s.version, "ts": now, "f": s.features}, separators=(",", ":")))
                pipe.ltrim(key, 0, self.settings.snapshot_history - 1)
                pipe.expire(key, ttl)
                pipe.lpush(drift_key(s.model), json.dumps({"p": s.probability, "f": s.features, "v": s.version}, separators=(",", ":")))
            for model in {s.model for s in batch}:
                pipe.ltrim(drift_key(model), 0, self.settings.drift_sample_size - 1)
            pipe.execute()

        self.store.call(write)
        shadows = [(SHADOW_EVENT, s.shadow) for s in batch if s.shadow is not None]
        if shadows:
            self.events.publish(shadows)

    def of(self, model: str, subject: str) -> list[Snapshot]:
        """Every snapshot still kept for a subject, newest first. Raises if Redis is unreachable:
        an outcome must not be stored without features merely because Redis blinked."""
        raw = self.strict.lrange(snapshots_key(model, subject), 0, -1)
        found = [json.loads(item) for item in raw]
        return [Snapshot(features=s["f"], version=s["v"], scored_at=float(s["ts"])) for s in found]

    def drift_sample(self, model: str, version: str) -> list[tuple[dict[str, Any], float]]:
        """The recent leads ``version`` scored: a canary challenger's scores, or an earlier
        champion's, would shift the score distribution without any drift in the market."""
        raw = self.store.call(lambda r: r.lrange(drift_key(model), 0, -1)) or []
        return [(d["f"], float(d["p"])) for d in map(json.loads, raw) if d.get("v") == version]
