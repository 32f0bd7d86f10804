"""The background writer never blocks its caller, and an unreachable Redis is skipped quickly."""

from __future__ import annotations

import socket
import threading
import time

from leadscore.stores.optional_redis import OptionalRedis
from leadscore.stores.write_behind import WriteBehind
from tests.waits import poll


def test_items_are_flushed_in_order_and_drain_waits_for_them() -> None:
    flushed: list[int] = []
    writer: WriteBehind[int] = WriteBehind(flushed.extend, max_pending=100, linger=0.001)
    for i in range(50):
        assert writer.submit(i)
    assert writer.drain(timeout=5)
    assert flushed == list(range(50))


def test_a_batch_submitted_together_is_taken_up_to_the_cap_and_flushed_in_order() -> None:
    release = threading.Event()
    flushed: list[int] = []
    writer: WriteBehind[int] = WriteBehind(lambda batch: (release.wait(5), flushed.extend(batch)), max_pending=4, linger=0.0)
    assert writer.submit_many([0, 1, 2]) == 3
    assert writer.submit_many([3, 4, 5]) in (1, 3)  # the thread may already have taken the first three
    release.set()
    assert writer.drain(timeout=5)
    assert flushed == list(range(len(flushed))) and writer.dropped == 6 - len(flushed)


def test_a_full_queue_drops_instead_of_blocking_and_a_failing_batch_does_not_kill_the_thread() -> None:
    release = threading.Event()
    flushed: list[int] = []

    def flush(batch: list[int]) -> None:
        release.wait(5)
        if 0 in batch:
            raise RuntimeError("one bad batch")
        flushed.extend(batch)

    writer: WriteBehind[int] = WriteBehind(flush, max_pending=3, linger=0.0, max_batch=1)
    writer.submit(0)
    poll(lambda: not writer._items, timeout=5, interval=0.001, what="the writer thread taking item 0")
    accepted = [writer.submit(i) for i in range(1, 6)]
    assert accepted == [True, True, True, False, False] and writer.dropped == 2
    release.set()
    assert writer.drain(timeout=5)
    assert flushed == [1, 2, 3]


def test_unreachable_redis_costs_one_timeout_then_is_skipped() -> None:
    with socket.socket() as hanging:  # accepts connections, never answers
        hanging.bind(("127.0.0.1", 0))
        hanging.listen(4)
        store = OptionalRedis(f"redis://127.0.0.1:{hanging.getsockname()[1]}/0", timeout=0.05, retry_after=60, role="cache")
        started = time.monotonic()
        assert store.call(lambda r: r.get("k")) is None
        assert 0.04 <= time.monotonic() - started < 2
        assert not store.available
        started = time.monotonic()
        assert store.call(lambda r: r.get("k")) is None
        assert time.monotonic() - started < 0.04
