"""A private redis-server process for tests that restart, password-protect or TLS-wrap Redis."""

from __future__ import annotations

import shutil
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis

from tests.waits import poll


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    def __init__(self, workdir: Path, port: int, args: tuple[str, ...] = ()) -> None:
        self.workdir, self.port, self.args = workdir, port, args
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, client: redis.Redis | None = None) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("redis-server is not installed")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [binary, "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.workdir),
             "--appendonly", "yes", "--appendfsync", "always", "--save", "", *self.args],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
        )
        probe = client or redis.Redis(port=self.port)
        poll(probe.ping, timeout=10, ignoring=(redis.ConnectionError,), what=f"redis-server on port {self.port} answering")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: Redis flushes its append-only file and exits
            self.proc.wait(timeout=10)


@contextmanager
def redis_server(workdir: Path, *args: str, client_factory=None) -> Iterator[RedisServer]:  # type: ignore[no-untyped-def]
    server = RedisServer(workdir, free_port(), args)
    server.start(client_factory(server.port) if client_factory else None)
    try:
        yield server
    finally:
        server.stop()
