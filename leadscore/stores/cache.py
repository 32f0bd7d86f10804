"""The prediction cache in Redis: entries keyed by model, version and feature digest.

    leadscore:cache:{<model>}:<version>:<digest>   packed result (ml_core.cache_entry), TTL cache_ttl_seconds
    leadscore:cache:{<model>}:version              the version workers serve, TTL cache_ttl_seconds
    leadscore:cache:stats                          hash: "<model>:hits", "<model>:misses"

Workers write entries (after each fresh score, from the background writer) and publish the
version they serve (in that same write, when a worker child loads a model, and at every prewarm
run). Readers, the web services' ``ScoreClient``, fetch the version key and the entry they guess
in one ``MGET`` and serve the entry only if its version is the published one: a new version never
serves an old version's score once a worker serving it has published. The ``{<model>}`` hash tag
keeps a model's keys in one Redis Cluster slot, so that ``MGET`` stays legal there.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any, cast

import redis

from leadscore.settings import Settings
from leadscore.stores.optional_redis import OptionalRedis
from ml_core.cache_entry import cacheable, pack, unpack

STATS_KEY = "leadscore:cache:stats"


def entry_key(model: str, version: str, digest: str) -> str:
    return f"leadscore:cache:{{{model}}}:{version}:{digest}"


def version_key(model: str) -> str:
    return f"leadscore:cache:{{{model}}}:version"


class PredictionCache:
    MEMO_SIZE = 4096

    def __init__(self, store: OptionalRedis, ttl_seconds: int) -> None:
        self.store, self.ttl = store, ttl_seconds
        self._version_guess: dict[str, str] = {}
        # Results this process received from workers, by entry key: the worker writes its entry a
        # few milliseconds after answering, so without this a lead asked for again at once missed.
        self._memo: OrderedDict[str, tuple[float, bytes]] = OrderedDict()

    def remember(self, model: str, digest: str, result: dict[str, Any]) -> None:
        """Keep a worker's fresh, cacheable result in this process until its entry would expire."""
        if not cacheable(result):
            return
        key = entry_key(model, result["model_version"], digest)
        self._memo[key] = (time.monotonic() + self.ttl, pack(result))
        self._memo.move_to_end(key)
        while len(self._memo) > self.MEMO_SIZE:
            self._memo.popitem(last=False)

    def _remembered(self, key: str) -> bytes | None:
        found = self._memo.get(key)
        if found is None or found[0] < time.monotonic():
            return None
        return found[1]

    def lookup(self, model: str, digest: str, lead_id: str) -> dict[str, Any] | None:
        """The cached result for ``lead_id``, or ``None`` (a miss, or the cache is unavailable).

        One round trip while the version is unchanged: the version key and the entry of the
        version seen last come back together. A changed version costs one more GET, once.
        """
        guess = self._version_guess.get(model)
        # replies are bytes: the client is built without decode_responses
        found = self.store.call(lambda r: cast(list[bytes | None], r.mget(version_key(model), entry_key(model, guess or "-", digest))))
        if found is None or found[0] is None:
            return None
        version = found[0].decode()
        blob = found[1]
        if version != guess:
            self._version_guess[model] = version
            blob = self.store.call(lambda r: cast(bytes | None, r.get(entry_key(model, version, digest))))
        blob = blob or self._remembered(entry_key(model, version, digest))  # only ever under the published version
        return unpack(blob, lead_id) if blob else None

    def stage_entry(self, pipe: redis.client.Pipeline, model: str, version: str, digest: str, result: dict[str, Any]) -> None:
        pipe.set(entry_key(model, version, digest), pack(result), ex=self.ttl)

    def stage_version(self, pipe: redis.client.Pipeline, model: str, version: str) -> None:
        pipe.set(version_key(model), version, ex=self.ttl)

    def stage_count(self, pipe: redis.client.Pipeline, model: str, outcome: str, n: int = 1) -> None:
        pipe.hincrby(STATS_KEY, f"{model}:{outcome}", n)

    def announce_version(self, model: str, version: str) -> str | None:
        """Publish the served version; returns the version it replaced (``None`` if none, or unknown)."""
        old = self.store.call(lambda r: r.set(version_key(model), version, ex=self.ttl, get=True))
        return old.decode() if isinstance(old, bytes) else None

    def stats(self) -> dict[str, dict[str, int]]:
        """Hits and misses per model, as counted by the clients that looked leads up."""
        raw = self.store.call(lambda r: cast(dict[bytes, bytes], r.hgetall(STATS_KEY))) or {}
        stats: dict[str, dict[str, int]] = {}
        for field, value in raw.items():
            model, _, outcome = field.decode().rpartition(":")
            stats.setdefault(model, {"hits": 0, "misses": 0})[outcome] = int(value)
        return stats


def store_of(settings: Settings) -> OptionalRedis:
    """The cache's Redis for readers outside the scoring path (status, the metrics exporter)."""
    return OptionalRedis(settings.cache_url, timeout=1.0, retry_after=0.0, role="status")


def cache_counts(settings: Settings) -> dict[str, dict[str, int]]:
    return PredictionCache(store_of(settings), settings.cache_ttl_seconds).stats()
