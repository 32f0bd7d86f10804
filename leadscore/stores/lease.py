"""A Redis lease: a key held by one owner at a time, with a TTL its owner keeps renewing.

Used by the single Beat (``leadscore/beat.py``) and by retraining (``leadscore/tasks/retrain.py``, one retrain of
a model at a time). An owner that dies stops renewing, and the key expires ``ttl`` seconds later,
so a crashed holder never blocks the others for good. Renewal and release touch only the owner's
own key (compare-and-set in Lua): a late renewal can never extend a successor's lease.
"""

from __future__ import annotations

import threading
import uuid

import redis

# Renew our own lease, or take a free one; atomically.
_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) and 1 or 0
"""
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"


class Lease:
    def __init__(self, client: redis.Redis, key: str, ttl_seconds: float, owner: str | None = None) -> None:
        self.client, self.key, self.ttl = client, key, ttl_seconds
        self.token = owner or uuid.uuid4().hex
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    def renew(self) -> bool:
        """Take the lease if free, extend it if ours; ``False`` if another owner holds it."""
        return bool(self.client.eval(_RENEW, 1, self.key, self.token, int(self.ttl * 1000)))

    def holder(self) -> str | None:
        value = self.client.get(self.key)
        return value.decode() if isinstance(value, bytes) else value

    def release(self) -> None:
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join(timeout=5)
        try:
            self.client.eval(_RELEASE, 1, self.key, self.token)
        except redis.RedisError:
            pass  # the TTL releases it anyway

    def keep_renewing(self) -> None:
        """Renew every third of the TTL from a daemon thread until ``release``."""

        def run() -> None:
            while not self._stop.wait(self.ttl / 3):
                try:
                    self.renew()
                except redis.RedisError:
                    pass  # the next attempt may reach Redis; the TTL covers two misses

        self._renewer = threading.Thread(target=run, name=f"lease:{self.key}", daemon=True)
        self._renewer.start()
