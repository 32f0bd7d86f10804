from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from leadscore.settings import get_settings
from ml_core.lifecycle import train_and_register
from ml_core.spec import available_models
from tests.integration.redis_server import free_port
from tests.integration.workers import close_client_apps, open_client_apps, running_worker, worker_env
from tests.stores import registry_at

REPO_MODELS = Path(__file__).resolve().parents[2] / "models"
ALL_MODELS = tuple(available_models(REPO_MODELS))


# Sockets of Celery's and kombu's own pools (the session app's broker and result connections,
# per-thread producers) are finalized by the garbage collector in whichever test it runs in. The
# client apps tests make are closed by the fixtures below; only unclosed-socket warnings are
# ignored, and only here: unit tests, and every other ResourceWarning or unraisable error, fail.
UNCLOSED_SOCKETS = pytest.mark.filterwarnings("ignore:unclosed <socket.socket:ResourceWarning")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration/" in str(item.path):
            item.add_marker(pytest.mark.integration)
            item.add_marker(UNCLOSED_SOCKETS)


@pytest.fixture(autouse=True)
def _close_the_tests_client_apps() -> Iterator[None]:
    """Client apps a test made are closed when it ends; those of module fixtures (made before this
    runs, since wider fixtures are set up first) stay open for the module and close at session end."""
    made_before = open_client_apps()
    yield
    close_client_apps(keep=made_before)


@pytest.fixture(scope="session", autouse=True)
def _close_every_client_app() -> Iterator[None]:
    yield
    close_client_apps()


@pytest.fixture(scope="session")
def redis_available() -> None:
    """Locally a missing Redis skips; in CI it fails, so a broken setup never passes green."""
    settings = get_settings()
    from leadscore import app

    assert app.conf.broker_url == settings.broker_url, "the app was created before the test settings were set"
    try:
        for url in (settings.broker_url, settings.result_backend, settings.cache_url):
            if url.startswith("redis"):
                redis.Redis.from_url(url, socket_connect_timeout=2).flushdb()
    except redis.RedisError as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"Redis not reachable: {exc}")
    if settings.broker_url.startswith("amqp"):
        from leadscore import app

        app.control.purge()  # RabbitMQ keeps queues across runs: start from empty ones


def copy_specs(dest: Path, names: tuple[str, ...] = ("lead_scorer",)) -> Path:
    for name in names:
        (dest / name).mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO_MODELS / name / "spec.toml", dest / name / "spec.toml")
    return dest


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models directory with every spec freshly trained and registered (small data: seconds each)."""
    root = copy_specs(tmp_path_factory.mktemp("models"), ALL_MODELS)
    for name in ALL_MODELS:
        train_and_register(registry_at(root), name, rows=4000, folds=3, repeats=1, time_budget=10)
    return root


@pytest.fixture(scope="session")
def worker_metrics_port() -> int:
    """The session worker serves its Prometheus metrics here (``tests/integration/metrics.py`` reads them)."""
    return free_port()


@pytest.fixture(scope="session")
def worker(redis_available: None, models_dir: Path, worker_metrics_port: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One prefork worker on every queue for the session; yields its log file."""
    log = tmp_path_factory.mktemp("logs") / "worker.log"
    with running_worker(worker_env(models_dir=str(models_dir)), log, extra_args=("--metrics-port", str(worker_metrics_port))):
        yield log
