"""The one bounded wait of the test suite: probe until something is there, or fail saying what.

Tests never sleep to "let something happen"; they poll a real observable (a Redis key, a log
line, a round trip through a worker) with a deadline, and a timeout names what never came.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class WaitTimeout(AssertionError):
    """A bounded wait ran out: ``what`` never became true within ``timeout`` seconds."""


def poll(
    probe: Callable[[], T | None],
    *,
    what: str,
    timeout: float = 15.0,
    interval: float = 0.05,
    ignoring: tuple[type[BaseException], ...] = (),
    detail: Callable[[], str] | None = None,
) -> T:
    """Call ``probe()`` until it returns something truthy and return that, or raise ``WaitTimeout``
    after ``timeout`` seconds naming ``what`` and the last value seen. Exceptions of the types in
    ``ignoring`` count as "not yet" (a server still starting); the last one is chained to the timeout.
    ``detail()`` (a log's tail, say) is read only on timeout and appended to the message."""
    deadline = time.monotonic() + timeout
    last: object = None
    error: BaseException | None = None
    while True:
        try:
            found = probe()
        except ignoring as exc:
            found, error = None, exc
        else:
            last = found
        if found:
            return found
        if time.monotonic() >= deadline:
            message = f"{what}: not after {timeout}s (last seen: {last!r})"
            raise WaitTimeout(f"{message}\n{detail()}" if detail else message) from error
        time.sleep(interval)
