"""Real Celery worker subprocesses for integration tests."""

from __future__ import annotations

import ctypes
import gc
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from celery import Celery

from leadscore.app import create_app
from leadscore.settings import Settings
from tests.stores import store_url
from tests.waits import poll


def worker_env(**overrides: str) -> dict[str, str]:
    """The test process's environment with ``LEADSCORE_*`` overrides; a worker given a models
    directory uses the state store inside it (``tests/stores.py``) unless a database is named."""
    env = dict(os.environ)
    if "models_dir" in overrides and "database_url" not in overrides:
        overrides = {**overrides, "database_url": store_url(Path(overrides["models_dir"]))}
    env.update({f"LEADSCORE_{k.upper()}": v for k, v in overrides.items()})
    return env


@contextmanager
def running_worker(
    env: dict[str, str],
    log_path: Path,
    *,
    queues: str = "scoring,batch,training,deep",
    concurrency: int = 2,
    extra_args: tuple[str, ...] = (),
    ready_timeout: float = 60.0,
) -> Iterator[subprocess.Popen[bytes]]:
    """A prefork worker in its own process group, up when a real ping task has round-tripped through it."""
    argv = [
        sys.executable, "-m", "celery", "-A", "leadscore", "worker", "-P", "prefork", "-c", str(concurrency),
        "-Q", queues, "-n", f"test-{uuid.uuid4().hex[:8]}@%h", "--without-gossip", "--without-mingle",
        "--loglevel", "INFO", *extra_args,
    ]
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=die_with_parent
        )
    try:
        wait_until_consuming(client_app(env), proc, log_path, ready_timeout, queue=queues.split(",")[0])
        yield proc
    finally:
        stop_group(proc)


def stop_group(proc: subprocess.Popen[bytes]) -> None:
    """Stop a worker and its children; SIGKILL whatever outlives a warm shutdown."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    if proc.poll() is None:
        proc.wait(timeout=10)



def die_with_parent() -> None:
    """Linux: SIGKILL this child when the test process dies, however it dies. A worker leaked by a
    killed test run would otherwise go on consuming the next run's test queues with stale code."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def settings_for(env: dict[str, str]) -> Settings:
    """The settings a process started with ``env`` reads."""
    # only settings: LEADSCORE_TEST_REDIS_URL and the like are the tests' own variables
    fields = {f"LEADSCORE_{name.upper()}": name for name in Settings.model_fields}
    return Settings(**{fields[k]: v for k, v in env.items() if k in fields})


# Every client app made, until closed: left to the garbage collector, an app's Redis sockets
# surface as "unraisable" ResourceWarnings in whichever later test the collection runs in.
_open_apps: list[Celery] = []


def client_app(env: dict[str, str]) -> Celery:
    """A client app for the broker and backend the given worker environment names; closed at the
    end of the test that made it (or of the session, if a module-scoped fixture made it)."""
    from leadscore import app as session_app

    app = create_app(settings_for(env))
    # A new Celery app makes itself current, and shared tasks (score_lead.delay) follow the current
    # app: without this, every later test would send to this worker's broker.
    session_app.set_current()
    _open_apps.append(app)
    return app


def open_client_apps() -> int:
    return len(_open_apps)


def close_client_apps(keep: int = 0) -> None:
    """Close every client app made after the first ``keep``, newest first."""
    while len(_open_apps) > keep:
        _close(_open_apps.pop())


def _close(app: Celery) -> None:
    # AsyncResults caught in reference cycles unsubscribe from the backend in __del__: collect them
    # now, while it is reachable (a test's private Redis may be gone by the time the GC runs).
    gc.collect()
    app.backend.result_consumer.stop()
    app.backend.client.connection_pool.disconnect()
    app.close()


def wait_until_consuming(
    app: Celery, proc: subprocess.Popen[bytes], log_path: Path, timeout: float = 60.0, queue: str = "scoring"
) -> None:
    def consuming() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"worker exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
        try:
            app.send_task("leadscore.ping", queue=queue, expires=2).get(timeout=2)
        except Exception:  # not consuming yet; the wait is bounded by its timeout
            return False
        return True

    poll(consuming, timeout=timeout, interval=0.0, what=f"the worker consuming {queue}", detail=lambda: log_path.read_text()[-3000:])


@contextmanager
def closing_client_app(env: dict[str, str]) -> Iterator[Celery]:
    """``client_app`` closed as soon as the block ends (before the workers it talks to stop)."""
    app = client_app(env)
    try:
        yield app
    finally:
        _open_apps.remove(app)
        _close(app)
