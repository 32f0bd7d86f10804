"""A fix for kombu's Redis transport, installed in each worker at start (``worker_init``).

When the broker connection drops while a worker holds an unacknowledged task, kombu releases the
connection, and two later calls on the old channel build a Redis client from it anyway: closing
the channel (which restores unacknowledged messages) and acknowledging the task once it finishes.
Both fail with ``AttributeError`` on the released connection (``'NoneType' object has no attribute
'hostname'`` / ``'client'``; kombu 5.7.0, reported before as celery/kombu#582 and #970). Celery
takes that for an unrecoverable error and the worker shuts down instead of reconnecting.
``tests/integration/test_redis_restart.py`` reproduces it.

The fix turns that AttributeError into the connection error it is. Celery already handles
those on both paths: it ignores them when closing a dead channel, and logs a failed ack. Nothing is
lost: every delivered message was first recorded in the broker's unacked hash, from which kombu
restores it after ``visibility_timeout`` (scoring is idempotent, so a task run twice is harmless).

The patch wraps a private method, so ``pyproject.toml`` caps kombu to the verified range and
``install`` refuses to start a worker on a kombu whose method is gone or takes other arguments:
silently running unpatched would bring back the shutdowns on every broker restart.
"""

from __future__ import annotations

import inspect
from typing import Any

PATCHED = "kombu.transport.redis.Channel._connparams"


def install() -> None:
    """Wrap kombu's Redis ``Channel._connparams``; a ``RuntimeError`` naming the kombu version if
    the method this fix wraps is gone or has changed its arguments."""
    import kombu
    import redis
    from kombu.transport import redis as transport

    original = getattr(transport.Channel, "_connparams", None)
    if original is None or "asynchronous" not in inspect.signature(original).parameters:
        found = "is gone" if original is None else f"now takes {inspect.signature(original)}"
        raise RuntimeError(
            f"kombu {kombu.__version__}: {PATCHED} {found}; leadscore/worker/broker_patches.py wraps it to survive "
            "a broker restart and was verified on kombu 5.7. Install the kombu version pinned in "
            "pyproject.toml (and constraints.txt), or port the patch to this kombu."
        )
    if getattr(original, "leadscore_patched", False):
        return

    def _connparams(self: Any, asynchronous: bool = False) -> Any:
        if self.connection is None or self.connection.client is None:
            raise redis.ConnectionError("this channel's broker connection was already released")
        return original(self, asynchronous=asynchronous)

    _connparams.leadscore_patched = True  # type: ignore[attr-defined]
    transport.Channel._connparams = _connparams  # type: ignore[method-assign]  # the patch, on purpose
