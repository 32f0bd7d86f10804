"""The kombu patch refuses to run on a kombu it was not written for, and a worker then fails to start."""

from __future__ import annotations

import os
import subprocess
import sys
from types import SimpleNamespace
from typing import Any

import kombu
import pytest
import redis
from kombu.transport import redis as transport

from leadscore.worker import broker_patches


@pytest.fixture
def channel_class(monkeypatch: pytest.MonkeyPatch) -> type:
    """kombu's Redis Channel, with its ``_connparams`` restored after the test."""
    monkeypatch.setattr(transport.Channel, "_connparams", transport.Channel._connparams)
    return transport.Channel


def test_install_wraps_connparams_once_and_a_released_connection_is_a_connection_error(channel_class: type) -> None:
    broker_patches.install()
    patched = channel_class._connparams
    broker_patches.install()
    assert channel_class._connparams is patched and patched.leadscore_patched
    released: Any = SimpleNamespace(connection=SimpleNamespace(client=None))
    with pytest.raises(redis.ConnectionError, match="already released"):
        patched(released)


def test_install_names_the_kombu_version_when_the_patched_method_is_gone(channel_class: type, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(channel_class, "_connparams")
    with pytest.raises(RuntimeError, match=rf"kombu {kombu.__version__}: kombu.transport.redis.Channel._connparams is gone"):
        broker_patches.install()


def test_install_refuses_a_connparams_with_other_arguments(channel_class: type, monkeypatch: pytest.MonkeyPatch) -> None:
    def _connparams(self: Any, use_async: bool = False) -> dict[str, Any]:
        return {}

    monkeypatch.setattr(channel_class, "_connparams", _connparams)
    with pytest.raises(RuntimeError, match=r"_connparams now takes \(self.*use_async"):
        broker_patches.install()


def test_a_worker_on_a_kombu_without_the_method_exits_at_start_saying_why() -> None:
    # Given a kombu whose Channel lost _connparams (as a future kombu might), and no broker at all
    start = (
        "import sys\n"
        "from kombu.transport import redis as transport\n"
        "del transport.Channel._connparams\n"
        "from celery.__main__ import main\n"
        "sys.argv = ['celery', '-A', 'leadscore', 'worker', '-P', 'solo', '--without-gossip', '--without-mingle']\n"
        "main()\n"
    )
    env = {**os.environ, "LEADSCORE_BROKER_URL": "redis://127.0.0.1:1/0", "LEADSCORE_RESULT_BACKEND": "redis://127.0.0.1:1/1"}
    # When a worker starts, then it exits non-zero before consuming, naming the kombu version
    done = subprocess.run([sys.executable, "-c", start], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert f"leadscore worker not started: kombu {kombu.__version__}: {broker_patches.PATCHED} is gone" in done.stderr
