"""Loaded into a test worker with ``-I``: every model load takes longer than Celery's 4 s
``worker_proc_alive_timeout``, as a large model on a slow disk would."""

from __future__ import annotations

import time
from typing import Any

from ml_core.registry import Registry

SLOW_LOAD_SECONDS = 6.0
_load = Registry.load


def _slow_load(self: Registry, *args: Any, **kwargs: Any) -> Any:
    time.sleep(SLOW_LOAD_SECONDS)
    return _load(self, *args, **kwargs)


Registry.load = _slow_load  # type: ignore[method-assign]
