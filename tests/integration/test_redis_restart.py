"""Redis restarts under traffic: clients get a clear error, and workers consume again afterwards."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from celery.exceptions import TimeoutError as CeleryTimeout
from kombu.exceptions import OperationalError
from redis.exceptions import ConnectionError as RedisConnectionError

from ml_core.synthetic import generate
from tests.integration.redis_server import redis_server
from tests.integration.test_faults import wait_for
from tests.integration.workers import client_app, running_worker, worker_env

pytestmark = pytest.mark.slow
# Celery's client gives up on the result store after its own reconnect policy (20 x 1 s) with a
# RuntimeError that says so, and reconnects on the next call once Redis is back.
CLEAR_ERRORS = (OperationalError, RedisConnectionError, CeleryTimeout, ConnectionError, RuntimeError)


def test_workers_consume_again_after_redis_restarts(redis_available: None, models_dir: Path, tmp_path: Path) -> None:
    leads = generate("lead_scorer", 400, 9).drop(columns="converted").to_dict("records")
    big_batch = generate("lead_scorer", 10_000, 10).drop(columns="converted").to_dict("records")
    with redis_server(tmp_path / "redis") as server:
        base = f"redis://127.0.0.1:{server.port}"
        env = worker_env(models_dir=str(models_dir), broker_url=f"{base}/0", result_backend=f"{base}/1")
        app = client_app(env)
        with running_worker(env, tmp_path / "w.log", queues="scoring"):
            before = [app.send_task("leadscore.score_lead", args=[lead]).get(timeout=10) for lead in leads[:20]]
            # When Redis goes away while the worker holds an unacknowledged task (a big batch, routed
            # to the queue it consumes), and comes back while clients keep sending
            busy = app.send_task("leadscore.predict_batch", args=[big_batch], queue="scoring")
            log = tmp_path / "w.log"
            wait_for(lambda: busy.id in log.read_text(), 30, "the batch to be received")
            server.stop()
            outage: list[str] = []
            for lead in leads[20:22]:
                try:
                    app.send_task("leadscore.score_lead", args=[lead]).get(timeout=2)
                    outage.append("ok")
                except CLEAR_ERRORS as exc:
                    outage.append(exc.__class__.__name__)
            server.start()
            # Then a real task completes again through the same worker, within a bounded time
            deadline, after = time.monotonic() + 60, None
            while after is None and time.monotonic() < deadline:
                try:
                    after = app.send_task("leadscore.score_lead", args=[leads[30]]).get(timeout=5)
                except CLEAR_ERRORS:
                    continue
            assert after is not None, "worker never consumed again after the Redis restart"
            rest = [app.send_task("leadscore.score_lead", args=[lead]).get(timeout=10) for lead in leads[31:60]]
    assert len(before) == 20 and after["lead_id"] == leads[30]["id"]
    assert [r["lead_id"] for r in rest] == [lead["id"] for lead in leads[31:60]]
    assert outage and all(o != "ok" for o in outage), outage
