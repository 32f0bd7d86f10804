"""Faults injected into real processes: killed children and workers, slow model loads, two Beats."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import redis

from leadscore.client.score_client import ScoreClient
from leadscore.settings import Settings
from tests.conftest import TEST_AMQP, TEST_REDIS
from tests.factories import leads
from tests.integration.workers import client_app, die_with_parent, running_worker, settings_for, stop_group, worker_env
from tests.waits import poll

pytestmark = [pytest.mark.slow, pytest.mark.broker]


def children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(x) for x in out.split()]


def own_broker(models_dir: Path, db: int, **extra: str) -> dict[str, str]:
    """Databases no other test uses, flushed, so leftovers never leak between fault tests."""
    for n in (db, db + 1):
        redis.Redis.from_url(f"{TEST_REDIS}/{n}").flushdb()
    settings = {"models_dir": str(models_dir), "broker_url": f"{TEST_REDIS}/{db}", "result_backend": f"{TEST_REDIS}/{db + 1}"}
    return worker_env(**{**settings, **extra})


def test_killed_worker_child_loses_no_batch(redis_available: None, models_dir: Path, tmp_path: Path) -> None:
    env = own_broker(models_dir, 13)
    app = client_app(env)
    batches = [leads(4000, seed) for seed in range(8)]
    with running_worker(env, tmp_path / "w.log", queues="batch") as worker:
        pending = [app.send_task("leadscore.predict_batch", args=[b]) for b in batches]
        pending[0].get(timeout=60)
        victim = children(worker.pid)[0]
        os.kill(victim, signal.SIGKILL)  # mid-batch: each batch keeps a child busy for a while
        results = [r.get(timeout=120) for r in pending]
    for batch, result in zip(batches, results):
        assert [r["lead_id"] for r in result] == [lead["id"] for lead in batch]
        assert all(r["served_by"] == "onnx" for r in result)
    assert "SIGKILL" in (tmp_path / "w.log").read_text()


def rabbitmq_env(models_dir: Path) -> dict[str, str]:
    """RabbitMQ as broker, on queues of this test's own."""
    import kombu

    try:
        with kombu.Connection(TEST_AMQP, connect_timeout=3) as conn:
            conn.ensure_connection(max_retries=1)
    except Exception as exc:  # any failure to connect means "no RabbitMQ here"
        if os.environ.get("CI"):
            raise
        pytest.skip(f"RabbitMQ not reachable: {exc}")
    suffix = uuid.uuid4().hex[:8]
    return own_broker(
        models_dir, 13, broker_url=TEST_AMQP, scoring_queue=f"scoring-{suffix}", batch_queue=f"batch-{suffix}"
    )


def test_killed_whole_worker_loses_nothing_once_another_worker_runs(redis_available: None, models_dir: Path, tmp_path: Path) -> None:
    """On RabbitMQ, which tracks unacknowledged deliveries itself. kombu's Redis transport pops a
    message and records it as unacknowledged in two steps, so a SIGKILL between them loses it:
    README, Guarantees."""
    # Given a worker holding prefetched, unacknowledged batches
    env = rabbitmq_env(models_dir)
    app = client_app(env)
    batches = [leads(4000, seed) for seed in range(6)]
    queue = env["LEADSCORE_BATCH_QUEUE"]
    with running_worker(env, tmp_path / "w1.log", queues=queue) as first:
        pending = [app.send_task("leadscore.predict_batch", args=[b]) for b in batches]
        pending[0].get(timeout=60)
        # When the whole worker, parent and children, dies at once
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
        # Then a new worker gets every unfinished batch back (after the visibility timeout)
        with running_worker(env, tmp_path / "w2.log", queues=queue):
            results = [r.get(timeout=120) for r in pending]
    for batch, result in zip(batches, results):
        assert [r["lead_id"] for r in result] == [lead["id"] for lead in batch]


def client_env(models_dir: Path, **extra: str) -> tuple[dict[str, str], Settings]:
    """A Redis broker of the test's own, and the settings a ScoreClient of that environment reads."""
    env = own_broker(models_dir, 13, cache_url=f"{TEST_REDIS}/15", **extra)
    redis.Redis.from_url(f"{TEST_REDIS}/15").flushdb()
    return env, settings_for(env)


def test_a_score_lost_by_the_redis_broker_is_resent_by_the_client(redis_available: None, models_dir: Path, tmp_path: Path) -> None:
    """kombu's Redis transport can lose a message popped by a worker killed before it recorded it
    as unacknowledged. Here the loss is made deterministic: the message is popped from the queue."""
    env, settings = client_env(models_dir, client_resend_seconds="1")
    broker = redis.Redis.from_url(env["LEADSCORE_BROKER_URL"])
    lead = leads(1, 31)[0]
    with ScoreClient(settings, client_app(env)) as client, ThreadPoolExecutor(1) as pool:
        # Given a lead sent to score while no worker runs, and its message lost from the queue
        future = pool.submit(client.score, lead, timeout=90)
        lost: list[bytes] = []
        poll(lambda: lost.extend(filter(None, [broker.rpop(settings.scoring_queue)])) or lost, timeout=10, what="the first message")
        # When a worker comes up, the client's re-send (same task id) is what it finds
        with running_worker(env, tmp_path / "w.log", queues=settings.scoring_queue):
            result = future.result(timeout=90)
    assert result["lead_id"] == lead["id"] and result["served_by"] == "onnx"
    assert json.loads(lost[0])["headers"]["id"] in (tmp_path / "w.log").read_text()  # the same task id, re-sent


def test_killed_whole_worker_on_redis_loses_no_client_score(redis_available: None, models_dir: Path, tmp_path: Path) -> None:
    """A dead worker's prefetched tasks come back after the visibility timeout; one lost mid-delivery
    is re-sent by the client. Either way every caller gets its lead's score."""
    env, settings = client_env(models_dir, visibility_timeout_seconds="4", client_resend_seconds="2")
    batch = leads(300, 32)
    with ScoreClient(settings, client_app(env)) as client, ThreadPoolExecutor(8) as pool:
        with running_worker(env, tmp_path / "w1.log", queues=settings.scoring_queue) as first:
            futures = [pool.submit(client.score, lead, timeout=120) for lead in batch]
            poll(lambda: sum(f.done() for f in futures) >= 20, timeout=60, what="the first scores")
            # When the whole worker, parent and children, dies while scores flow
            os.killpg(first.pid, signal.SIGKILL)
            first.wait(timeout=10)
        assert not all(f.done() for f in futures), "the kill came too late to test anything"
        # Then with a new worker, every caller gets a result for its own lead
        with running_worker(env, tmp_path / "w2.log", queues=settings.scoring_queue):
            results = [f.result(timeout=150) for f in futures]
    assert [r["lead_id"] for r in results] == [lead["id"] for lead in batch]
    assert all(r["served_by"] == "onnx" for r in results)


def test_slow_model_loading_never_gets_a_child_killed(redis_available: None, models_dir: Path, tmp_path: Path) -> None:
    loads = tmp_path / "loads"  # slow_loading's LOADS_FILE_ENV (importing it here would slow this process's loads)
    env = {**own_broker(models_dir, 13), "LEADSCORE_TEST_SLOW_LOADS_FILE": str(loads)}
    log = tmp_path / "w.log"
    with running_worker(env, log, queues="scoring", extra_args=("-I", "tests.integration.slow_loading"), ready_timeout=90) as worker:
        result = client_app(env).send_task("leadscore.score_lead", args=[leads(1, 5)[0]]).get(timeout=60)
        assert result["served_by"] == "onnx"
        alive = set(children(worker.pid))
    # Every process that started a slow load is still one of the worker's children: none was killed
    # for missing its start-up deadline (a killed child would be replaced by a new pid)
    loaders = {int(pid) for pid in loads.read_text().split()}
    assert loaders and loaders <= alive, f"loading processes {sorted(loaders)}, children alive {sorted(alive)}"


def start_beat(env: dict[str, str], log: Path, schedule_file: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "leadscore", "beat", "--loglevel", "INFO", "--schedule", str(schedule_file)],
            env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=die_with_parent,
        )


def test_second_beat_stands_by_until_the_first_dies(redis_available: None, models_dir: Path, tmp_path: Path) -> None:
    redis.Redis.from_url(os.environ["LEADSCORE_LOCK_URL"]).flushdb()
    env = own_broker(models_dir, 13, health_ping_seconds="1", beat_lock_ttl_seconds="3")
    logs = [tmp_path / "beat-a.log", tmp_path / "beat-b.log"]
    sent = lambda i: logs[i].read_text().count("Sending due task") if logs[i].exists() else 0  # noqa: E731
    a = start_beat(env, logs[0], tmp_path / "a-schedule")
    try:
        poll(lambda: sent(0) >= 1, timeout=30, interval=0.2, what="the first Beat sending")
        b = start_beat(env, logs[1], tmp_path / "b-schedule")
        try:
            poll(lambda: sent(0) >= 6, timeout=30, interval=0.2, what="the first Beat sending six")
            assert sent(1) == 0, "two Beats sent the same schedule"
            os.killpg(a.pid, signal.SIGKILL)
            poll(lambda: sent(1) >= 2, timeout=30, interval=0.2, what="the standby Beat taking over")
        finally:
            stop_group(b)
    finally:
        stop_group(a)
    assert "beat lock acquired" in logs[1].read_text()
