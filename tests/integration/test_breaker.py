"""A missing model is served by its rules behind a breaker, which closes by itself once the model exists."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import redis

from leadscore.stores.events import stream_key
from leadscore.worker.process import BREAKER_EVENT
from ml_core.lifecycle import train_and_register
from tests import factories
from tests.conftest import TEST_REDIS
from tests.integration.conftest import copy_specs
from tests.integration.workers import client_app, running_worker, worker_env
from tests.stores import registry_at
from tests.waits import poll


def breaker_events(url: str) -> list[tuple[str, str]]:
    entries = redis.Redis.from_url(url).xrange(stream_key(BREAKER_EVENT))
    return [(f[b"from"].decode(), f[b"to"].decode()) for _, f in entries]


def test_missing_model_falls_back_then_recovers_without_a_restart(redis_available: None, tmp_path: Path) -> None:
    models = copy_specs(tmp_path / "models")
    events_url = f"{TEST_REDIS}/9"
    redis.Redis.from_url(events_url).flushdb()
    env = worker_env(
        models_dir=str(models), broker_url=f"{TEST_REDIS}/13", result_backend=f"{TEST_REDIS}/14",
        cache_url=events_url, breaker_reset_seconds="1",
    )
    app = client_app(env)
    lead = factories.lead(4)
    log = tmp_path / "w.log"
    with running_worker(env, log, queues="scoring", concurrency=1):
        # Given no model is registered: the rules serve, and say why
        first = app.send_task("leadscore.score_lead", args=[lead]).get(timeout=10)
        assert first["served_by"] == "fallback" and first["model_version"] == "rules"
        assert "no champion registered" in first["fallback_reason"]
        # When a model is trained and registered while the worker runs
        train_and_register(registry_at(models), "lead_scorer", rows=3000, folds=3, repeats=1)
        # Then, within a bounded time, the same worker serves it: no restart
        def served_by_onnx() -> dict[str, Any] | None:
            served: dict[str, Any] = app.send_task("leadscore.score_lead", args=[lead]).get(timeout=10)
            return served if served["served_by"] == "onnx" else None

        served = poll(served_by_onnx, timeout=30, what="the registered model served by ONNX")
    assert served["served_by"] == "onnx" and served["model_version"] == "v1"
    assert "fallback_reason" not in served
    transitions = breaker_events(events_url)
    assert transitions[0] == ("closed", "open") and transitions[-1] == ("half_open", "closed")
    assert "circuit breaker of model lead_scorer: half_open -> closed" in log.read_text()
