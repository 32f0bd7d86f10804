"""Redis restarts under traffic: clients get a clear error, and workers consume again afterwards."""

from __future__ import annotations

from pathlib import Path

import pytest
from celery.exceptions import TimeoutError as CeleryTimeout
from kombu.exceptions import OperationalError
from redis.exceptions import ConnectionError as RedisConnectionError

from tests.factories import leads
from tests.integration.redis_server import redis_server
from tests.integration.workers import closing_client_app, running_worker, worker_env
from tests.waits import poll

pytestmark = [
    pytest.mark.slow,
    # Celery's AsyncResult.__del__ unsubscribes from the result backend and raises "Retry limit
    # exceeded" when Redis is down; results dropped during this test's deliberate outage do that
    # from the garbage collector. Only that message, only in this module.
    pytest.mark.filterwarnings("ignore:Exception ignored in. <function AsyncResult.__del__:pytest.PytestUnraisableExceptionWarning"),
]
# Celery's client gives up on the result store after its own reconnect policy (20 x 1 s) with a
# RuntimeError that says so, and reconnects on the next call once Redis is back.
CLEAR_ERRORS = (OperationalError, RedisConnectionError, CeleryTimeout, ConnectionError, RuntimeError)


def test_workers_consume_again_after_redis_restarts(redis_available: None, models_dir: Path, tmp_path: Path) -> None:
    batch = leads(400, 9)
    big_batch = leads(10_000, 10)
    with redis_server(tmp_path / "redis") as server:
        base = f"redis://127.0.0.1:{server.port}"
        env = worker_env(models_dir=str(models_dir), broker_url=f"{base}/0", result_backend=f"{base}/1")
        with closing_client_app(env) as app, running_worker(env, tmp_path / "w.log", queues="scoring"):
            before = [app.send_task("leadscore.score_lead", args=[lead]).get(timeout=10) for lead in batch[:20]]
            # When Redis goes away while the worker holds an unacknowledged task (a big batch, routed
            # to the queue it consumes), and comes back while clients keep sending
            busy = app.send_task("leadscore.predict_batch", args=[big_batch], queue="scoring")
            log = tmp_path / "w.log"
            poll(lambda: busy.id in log.read_text(), timeout=30, interval=0.2, what="the worker receiving the batch")
            server.stop()
            outage: list[str] = []
            for lead in batch[20:22]:
                try:
                    app.send_task("leadscore.score_lead", args=[lead]).get(timeout=2)
                    outage.append("ok")
                except CLEAR_ERRORS as exc:
                    outage.append(exc.__class__.__name__)
            server.start()
            # Then a real task completes again through the same worker, within a bounded time
            after = poll(lambda: app.send_task("leadscore.score_lead", args=[batch[30]]).get(timeout=5),
                         timeout=60, ignoring=CLEAR_ERRORS, what="the worker consuming again after the Redis restart")
            rest = [app.send_task("leadscore.score_lead", args=[lead]).get(timeout=10) for lead in batch[31:60]]
    assert len(before) == 20 and after["lead_id"] == batch[30]["id"]
    assert [r["lead_id"] for r in rest] == [lead["id"] for lead in batch[31:60]]
    assert outage and all(o != "ok" for o in outage), outage
