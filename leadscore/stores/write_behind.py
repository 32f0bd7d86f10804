"""A bounded queue drained by one background thread: work that must never block or fail its caller.

Scoring hands its side effects (cache writes, events, escalation hand-offs) to a ``WriteBehind``
and returns. The thread waits ``linger`` seconds (50 ms) after the first item so the caller's own
I/O (Celery storing the result) goes first and several items share one round trip: a scoring
child under load flushes several batches' side effects at once (at 5 ms each batch had its own
flush, which cost a child as much CPU as scoring the batch). When
``max_pending`` items wait, new ones are dropped and counted rather than waited for. The thread
starts on first use in the process that uses it, so one never crosses a fork.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")


class WriteBehind(Generic[T]):
    def __init__(
        self,
        flush: Callable[[list[T]], None],
        *,
        max_pending: int,
        linger: float = 0.05,
        max_batch: int = 500,
        name: str = "write-behind",
    ) -> None:
        self._flush, self.max_pending, self.linger, self.max_batch, self.name = flush, max_pending, linger, max_batch, name
        self.dropped = 0
        self._pid = -1
        self._start_lock = threading.Lock()

    def submit(self, item: T) -> bool:
        """Queue ``item``; ``False`` (and counted in ``dropped``) if the queue is full."""
        return self.submit_many([item]) == 1

    def submit_many(self, items: list[T]) -> int:
        """Queue ``items`` with one wake-up of the thread; how many were taken (the rest are dropped)."""
        if self._pid != os.getpid():
            with self._start_lock:
                if self._pid != os.getpid():
                    self._start()
        with self._cond:
            taken = max(0, min(len(items), self.max_pending - len(self._items)))
            self._items.extend(items[:taken])
            self.dropped += len(items) - taken
            if taken:
                self._cond.notify()
        return taken

    def drain(self, timeout: float) -> bool:
        """Wait until everything submitted so far is flushed; ``False`` if ``timeout`` passed first."""
        if self._pid != os.getpid():
            return True
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._items or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def _start(self) -> None:
        self._items: deque[T] = deque()
        self._cond = threading.Condition()
        self._busy = False
        self._pid = os.getpid()
        threading.Thread(target=self._run, name=self.name, daemon=True).start()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._items:
                    self._cond.wait()
                self._busy = True
            time.sleep(self.linger)
            with self._cond:
                batch = [self._items.popleft() for _ in range(min(len(self._items), self.max_batch))]
            try:
                self._flush(batch)
            except Exception:  # the thread must survive anything one batch does
                log.exception("%s: a batch of %d side effects failed and was dropped", self.name, len(batch))
            finally:
                with self._cond:
                    self._busy = bool(self._items)
                    self._cond.notify_all()
