"""A Beat that sends tasks only while it holds a Redis lock, so a second Beat stands by.

Two Beats would fire every schedule twice. The lock is a key with a TTL, set with NX and renewed
by its holder on every tick; a standby Beat takes over once the holder has been silent for
``beat_lock_ttl_seconds`` (killed, hung, partitioned).
"""

from __future__ import annotations

import logging
from typing import Any

import redis
from celery.beat import PersistentScheduler

from leadscore.settings import get_settings
from leadscore.stores.lease import Lease

log = logging.getLogger(__name__)

LOCK_KEY = "leadscore:beat:lock"


class SingleBeatScheduler(PersistentScheduler):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        settings = get_settings()
        self._ttl = settings.beat_lock_ttl_seconds
        client = redis.Redis.from_url(settings.lock_url, socket_timeout=5, socket_connect_timeout=5)
        self._lease = Lease(client, LOCK_KEY, self._ttl)
        self._holding = False
        super().__init__(*args, **kwargs)

    def tick(self, *args: Any, **kwargs: Any) -> float:
        if not self._renew():
            return self._ttl / 3
        return min(super().tick(*args, **kwargs), self._ttl / 3)

    def close(self) -> None:
        super().close()
        if self._holding:
            self._lease.release()

    def _renew(self) -> bool:
        try:
            held = self._lease.renew()
        except redis.RedisError as exc:
            log.warning("beat lock unreachable, not sending: %s", exc.__class__.__name__)
            held = False
        if held != self._holding:
            log.warning("beat lock %s", "acquired: this Beat sends schedules" if held else "lost: standing by")
            self._holding = held
        return held
