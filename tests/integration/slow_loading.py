"""Loaded into a test worker with ``-I``: every model load takes longer than Celery's 4 s
``worker_proc_alive_timeout``, as a large model on a slow disk would. Each loading process writes
its pid to the file named by ``LOADS_FILE_ENV``, so a test can tell whether any of them was killed."""

from __future__ import annotations

import os
import time
from typing import Any

from ml_core.registry import Registry

SLOW_LOAD_SECONDS = 6.0
LOADS_FILE_ENV = "LEADSCORE_TEST_SLOW_LOADS_FILE"
_load = Registry.load


def _slow_load(self: Registry, *args: Any, **kwargs: Any) -> Any:
    with open(os.environ[LOADS_FILE_ENV], "a") as loads:
        loads.write(f"{os.getpid()}\n")
    time.sleep(SLOW_LOAD_SECONDS)
    return _load(self, *args, **kwargs)


Registry.load = _slow_load  # type: ignore[method-assign]
