"""The shared bounded wait: returns what the probe found, or fails naming what never came."""

from __future__ import annotations

import itertools

import pytest

from tests.waits import WaitTimeout, poll


def test_poll_returns_the_first_truthy_value() -> None:
    counter = itertools.count()
    assert poll(lambda: [n] if (n := next(counter)) >= 3 else [], interval=0, what="three probes") == [3]


def test_poll_times_out_naming_what_the_last_value_and_the_detail() -> None:
    with pytest.raises(WaitTimeout, match=r"the answer: not after 0.05s \(last seen: 0\)\nlog tail") as caught:
        poll(lambda: 0, timeout=0.05, interval=0.01, what="the answer", detail=lambda: "log tail")
    assert isinstance(caught.value, AssertionError)  # pytest reports it as a failed assertion


def test_poll_treats_ignored_errors_as_not_yet_and_chains_the_last_one() -> None:
    calls = itertools.count()

    def starting() -> str:
        if next(calls) < 2:
            raise ConnectionError("not listening yet")
        return "up"

    assert poll(starting, interval=0, ignoring=(ConnectionError,), what="a server") == "up"
    with pytest.raises(WaitTimeout) as caught:
        poll(lambda: (_ for _ in ()).throw(ConnectionError("down")), timeout=0.02, interval=0.01, ignoring=(ConnectionError,), what="x")
    assert isinstance(caught.value.__cause__, ConnectionError)
    with pytest.raises(KeyError):  # anything not ignored fails at once
        poll(lambda: {}["missing"], what="a key")
