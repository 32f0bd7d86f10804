"""PostgreSQL for the fleet tests: a fresh database per module on the server
``LEADSCORE_TEST_DATABASE_URL`` names (default: the local server, user postgres). Locally a missing
server skips; in CI it fails (``scripts/lib.sh`` starts one there)."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

SERVER = os.environ.get("LEADSCORE_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
PREFIX = os.environ.get("LEADSCORE_TEST_DATABASE_PREFIX", "leadscore_test")


@contextmanager
def fresh_database(server: str = SERVER) -> Iterator[str]:
    """The URL of a new, empty database on ``server``, dropped afterwards."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import OperationalError

    admin = create_engine(server, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
    name = f"{PREFIX}_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as exc:
        admin.dispose()
        if os.environ.get("CI"):
            raise
        pytest.skip(f"PostgreSQL not reachable at {make_url(server).render_as_string(hide_password=True)}: {exc.orig}")
    try:
        yield make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


class Cluster:
    """A throwaway PostgreSQL cluster of this test's own (initdb + pg_ctl in a temporary directory, trust
    auth on 127.0.0.1 and a free port): stopping it disturbs nobody else using the machine's server."""

    def __init__(self) -> None:
        self.bin = _bindir()
        # not under pytest's private temporary directory: the server's own user must reach it
        root = Path(tempfile.mkdtemp(prefix="leadscore-pg-"))
        self.root, self.data, self.port = root, root / "data", _free_port()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"
        self._as_owner: list[str] = []
        if os.getuid() == 0:  # initdb refuses to run as root
            shutil.chown(root, "postgres")
            self._as_owner = ["runuser", "-u", "postgres", "--"]
        subprocess.run([*self._as_owner, str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust"],
                       check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        subprocess.run([*self._as_owner, str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "postgres.log"), "-w",
                        "-o", f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1", "start"],
                       check=True, capture_output=True, timeout=120)

    def stop(self) -> None:
        subprocess.run([*self._as_owner, str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"],
                       check=True, capture_output=True, timeout=120)


@contextmanager
def throwaway_cluster() -> Iterator[Cluster]:
    try:
        cluster = Cluster()
    except (FileNotFoundError, subprocess.CalledProcessError) as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"cannot run a throwaway PostgreSQL cluster (initdb/pg_ctl): {exc}")
    cluster.start()
    try:
        yield cluster
    finally:
        try:
            cluster.stop()
        except subprocess.CalledProcessError:
            pass  # already stopped
        shutil.rmtree(cluster.root, ignore_errors=True)


def _bindir() -> Path:
    found = shutil.which("pg_ctl")
    if found and shutil.which("initdb"):
        return Path(found).parent
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: [int(x) for x in re.findall(r"\d+", p.parent.name)])
    if not candidates:
        raise FileNotFoundError("initdb and pg_ctl are not installed (apt-get install postgresql)")
    return candidates[-1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
