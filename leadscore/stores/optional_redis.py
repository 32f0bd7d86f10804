"""A Redis that scoring can live without: the prediction cache and the event streams.

Short socket timeouts and no client retries bound what one failing call costs; after a failure
the connection is skipped for ``retry_after`` seconds (a circuit breaker), so an outage costs one
timeout per window instead of one per lead. Callers get ``None`` back and carry on.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

log = logging.getLogger(__name__)
T = TypeVar("T")


class OptionalRedis:
    def __init__(self, url: str, *, timeout: float, retry_after: float, role: str) -> None:
        self.url, self.role, self.retry_after = url, role, retry_after
        self.client = redis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 0)
        )
        self._skip_until = 0.0
        self._lock = threading.Lock()

    @property
    def available(self) -> bool:
        return time.monotonic() >= self._skip_until

    def call(self, operation: Callable[[redis.Redis], T]) -> T | None:
        """``operation(client)``, or ``None`` if this Redis is down or was down moments ago."""
        if not self.available:
            return None
        try:
            return operation(self.client)
        except redis.RedisError as exc:
            with self._lock:
                if self.available:  # log once per outage window, not once per lead
                    log.warning("%s Redis unavailable (%s: %s); going on without it for %.0fs",
                                self.role, exc.__class__.__name__, exc, self.retry_after)
                self._skip_until = time.monotonic() + self.retry_after
            return None
