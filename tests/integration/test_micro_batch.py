"""Micro-batched ``score_lead``: many callers at once, each with its own result, error and version.

Messages are sent before the worker starts (or while it is busy), so they wait together and the
worker scores them in batches; the batch-size histogram the children write proves that batches
of more than one request really ran. The broker is Redis, or RabbitMQ with
``LEADSCORE_TEST_BROKER_URL=amqp://...``.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis
from celery import Celery

from bench.batching import batch_sizes
from ml_core.errors import InvalidLeadError
from ml_core.lifecycle import train_and_register
from tests.conftest import TEST_REDIS
from tests.factories import leads
from tests.integration.conftest import copy_specs
from tests.integration.redis_server import free_port
from tests.integration.workers import client_app, running_worker, worker_env
from tests.stores import registry_at
from tests.waits import poll

pytestmark = pytest.mark.broker  # acknowledgement by the batch differs by broker (kombu QoS on Redis, one by one on RabbitMQ)

MODEL = "lead_scorer"


def batch_env(models_dir: Path, **extra: str) -> dict[str, str]:
    """The session's broker (Redis or RabbitMQ) on a scoring queue of this test's own."""
    for db in (13, 14):
        redis.Redis.from_url(f"{TEST_REDIS}/{db}").flushdb()
    return worker_env(
        models_dir=str(models_dir), scoring_queue=f"scoring-{uuid.uuid4().hex[:8]}", result_backend=f"{TEST_REDIS}/13", **extra,
    )


@contextmanager
def batch_worker(env: dict[str, str], log: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """A worker on the test's scoring queue, serving its metrics on a port of its own (yielded)."""
    port = free_port()
    with running_worker(env, log, queues=env["LEADSCORE_SCORING_QUEUE"], extra_args=("--metrics-port", str(port))) as worker:
        yield worker, port


def send(app: Celery, env: dict[str, str], lead: Any, **options: Any) -> Any:
    return app.send_task("leadscore.score_lead", args=[lead], queue=env["LEADSCORE_SCORING_QUEUE"], **options)


def largest_batch(port: int) -> int:
    return max((size for size, n in batch_sizes(port).items() if n), default=0)


def test_waiting_callers_are_scored_together_each_with_its_own_result_or_error(
    redis_available: None, models_dir: Path, tmp_path: Path
) -> None:
    env = batch_env(models_dir)
    app = client_app(env)
    batch = leads(300, 31, prefix="mb")
    bad = {7: ("timeline_urgency", 7.0), 150: ("questions_asked", "many"), 299: ("response_time_hours", None)}
    for i, (field, value) in bad.items():
        batch[i] = {**batch[i], field: value}
    # Given 300 callers waiting before any worker runs (and one lead re-sent under its task id, as
    # ScoreClient does), when the worker starts
    pending = [send(app, env, lead) for lead in batch]
    resent = send(app, env, batch[0], task_id=pending[0].id)
    with batch_worker(env, tmp_path / "w.log") as (_, port):
        for i, (lead, result) in enumerate(zip(batch, pending)):
            if i in bad:
                # then a bad lead gets its own typed error, naming it and its field
                with pytest.raises(InvalidLeadError) as raised:
                    result.get(timeout=60)
                assert raised.value.lead_id == lead["id"] and bad[i][0] in str(raised.value)
            else:
                # and every other caller gets its own lead's score, in the usual shape
                got = result.get(timeout=60)
                assert got["lead_id"] == lead["id"] and got["model"] == MODEL and got["served_by"] == "onnx"
                assert set(got) >= {"score", "probability", "label", "confidence", "escalated", "model_version", "latency_ms"}
        assert resent.get(timeout=60) == pending[0].get(timeout=1)
        # explain=True takes the unbatched path and still answers
        explained = app.send_task(
            "leadscore.score_lead", args=[batch[1]], kwargs={"explain": True}, queue=env["LEADSCORE_SCORING_QUEUE"]
        ).get(timeout=60)
        assert explained["lead_id"] == batch[1]["id"] and "explanation" in explained
        assert largest_batch(port) > 1, "no batch of more than one request ran"


def test_a_child_killed_mid_batch_loses_no_callers_score(redis_available: None, models_dir: Path, tmp_path: Path) -> None:
    env = batch_env(models_dir)
    app = client_app(env)
    log = tmp_path / "w.log"
    sent: list[tuple[dict[str, Any], Any]] = []
    with batch_worker(env, log) as (worker, port):

        def killed_mid_batch() -> bool:
            # Given a backlog the worker is scoring in batches back to back (sending outpaces scoring;
            # a fresh one each try, so a fast worker cannot have drained it before the kill)
            burst = [(lead, send(app, env, lead)) for lead in leads(600, 32 + len(sent), prefix=f"kill{len(sent)}")]
            sent.extend(burst)
            burst[0][1].get(timeout=60)
            # when the children are SIGKILLed (again, until one was holding a batch)
            for pid in Path(f"/proc/{worker.pid}/task/{worker.pid}/children").read_text().split():
                os.kill(int(pid), signal.SIGKILL)
            return "WorkerLostError" in log.read_text()

        poll(killed_mid_batch, timeout=90, interval=1.0, what="a child killed while it scored a batch")
        # then every caller still gets its own lead's score
        results = [result.get(timeout=120) for _, result in sent]
        assert largest_batch(port) > 1
    assert [r["lead_id"] for r in results] == [lead["id"] for lead, _ in sent]


@pytest.fixture(scope="module")
def two_versions(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """v1 the champion, v2 registered beside it (a different training seed)."""
    models = copy_specs(tmp_path_factory.mktemp("two_versions"))
    registry = registry_at(models)
    train_and_register(registry, MODEL, rows=3000, folds=3, repeats=1, seed=1)
    train_and_register(registry, MODEL, rows=3000, folds=3, repeats=1, seed=2)
    registry.set_champion(MODEL, "v1")
    yield models


def test_a_promotion_during_traffic_serves_each_batch_by_one_version(
    redis_available: None, two_versions: Path, tmp_path: Path
) -> None:
    env = batch_env(two_versions, reload_check_seconds="0.2")
    app = client_app(env)
    registry = registry_at(two_versions)
    stop = threading.Event()
    results: list[dict[str, Any]] = []

    def traffic() -> None:
        # bursts of 40 callers at once, until told to stop; each burst's results in completion order
        wave = 0
        while not stop.is_set():
            burst = leads(40, 100 + wave, prefix=f"w{wave}")
            results.extend(r.get(timeout=60) for r in [send(app, env, lead) for lead in burst])
            wave += 1

    with batch_worker(env, tmp_path / "w.log") as (_, port):
        sender = threading.Thread(target=traffic)
        sender.start()
        try:
            poll(lambda: len(results) >= 200, timeout=60, what="traffic on v1")
            registry.set_champion(MODEL, "v2")  # what promote does to the pointer the workers watch
            seen = len(results)
            poll(lambda: any(r["model_version"] == "v2" for r in results[seen:]), timeout=30, what="v2 served")
            poll(lambda: len(results) >= seen + 400, timeout=60, what="traffic on v2")
        finally:
            stop.set()
            sender.join(timeout=90)
        largest = largest_batch(port)
    versions = [r["model_version"] for r in results]
    assert set(versions) == {"v1", "v2"}
    # a batch is scored in one call, so its results share one latency_ms and arrive one after the
    # other: each such run of results names one version
    runs = [list(g) for _, g in itertools.groupby(results, key=lambda r: r["latency_ms"])]
    assert max(len(run) for run in runs) > 1
    assert all(len({r["model_version"] for r in run}) == 1 for run in runs)
    # every child reloads between two batches within reload_check_seconds, and never goes back
    assert "v1" not in versions[-200:]
    assert largest > 1
