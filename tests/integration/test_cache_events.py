"""Prediction cache, events, escalation and explanations through a real Redis and prefork worker."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import redis
from scipy.special import logit

from leadscore import explain_lead, predict_batch, score_lead
from leadscore.client.score_client import ScoreClient
from leadscore.settings import Settings, get_settings
from leadscore.stores.cache import entry_key, version_key
from leadscore.stores.event_types import EventType
from leadscore.stores.events import decode, stream_key
from ml_core.cache_entry import feature_digest
from ml_core.features import encode_leads
from ml_core.lifecycle import train_and_register
from tests.conftest import TEST_REDIS
from tests.factories import leads
from tests.integration.conftest import copy_specs
from tests.integration.workers import client_app, running_worker, worker_env
from tests.stores import copy_store, registry_at, store_url
from tests.waits import poll

MODEL = "lead_scorer"
EVENT_FIELDS = {"id", "schema", "type", "lead_id", "model", "model_version", "score", "probability", "confidence", "escalated", "ts"}
LEADSCORE = str(Path(sys.executable).parent / "leadscore")




def events_of(r: redis.Redis, event_type: str, lead_id: str) -> list[dict[str, Any]]:
    return [e for e in (decode(i, f) for i, f in r.xrange(stream_key(event_type))) if e["lead_id"] == lead_id]


@pytest.fixture(scope="module")
def cache_redis(redis_available: None) -> redis.Redis:
    return redis.Redis.from_url(get_settings().cache_url)


@pytest.fixture
def isolated_dbs(redis_available: None) -> Iterator[dict[str, str]]:
    """Broker, results and cache databases of a test's own worker, empty before and after."""
    urls = {"broker_url": f"{TEST_REDIS}/13", "result_backend": f"{TEST_REDIS}/14", "cache_url": f"{TEST_REDIS}/9"}
    for url in urls.values():
        redis.Redis.from_url(url).flushdb()
    yield urls
    for url in urls.values():
        redis.Redis.from_url(url).flushdb()


@pytest.fixture(scope="module")
def client(worker: Path) -> Iterator[ScoreClient]:
    with ScoreClient() as c:
        yield c


def test_miss_then_hit_serves_the_requesting_lead_and_counts_both(client: ScoreClient, cache_redis: redis.Redis) -> None:
    lead = leads(1, 101, prefix="s101")[0]
    before = client.effects.cache.stats().get(MODEL, {"hits": 0, "misses": 0})
    # Given a lead nobody scored yet: a miss goes through the worker
    fresh = client.score(lead)
    assert "cached" not in fresh and fresh["lead_id"] == lead["id"]
    # Then, once the worker's background write lands, the client serves it without the broker
    hit = poll(lambda: client.lookup(lead), what="the worker's cache write")
    assert hit["cached"] is True
    assert {k: v for k, v in hit.items() if k not in ("cached", "latency_ms")} == {k: v for k, v in fresh.items() if k != "latency_ms"}
    assert client.score_async(lead).get(timeout=1)["cached"] is True
    # And another lead with the same features gets the entry under its own id, NumPy values or not
    twin = client.lookup({**lead, "id": "twin-101", "questions_asked": np.int64(lead["questions_asked"])})
    assert twin is not None and twin["lead_id"] == "twin-101" and twin["probability"] == fresh["probability"]
    assert not [k for k in cache_redis.keys("leadscore:cache:*") if lead["id"].encode() in k or b"twin" in k]
    client.close()
    after = client.effects.cache.stats()[MODEL]
    assert after["hits"] - before["hits"] >= 2 and after["misses"] - before["misses"] >= 1


def test_the_same_lead_asked_again_at_once_is_a_hit(client: ScoreClient) -> None:
    # Given a lead the client just had scored by a worker (whose cache write lands milliseconds later)
    for lead in leads(5, 102, prefix="s102"):
        fresh = client.score(lead)
        # When the client is asked for it again straight away, then it answers from the cache
        again = client.score(lead)
        assert again.get("cached") is True and again["probability"] == fresh["probability"]


def test_scoring_events_arrive_on_streams_with_their_schema(client: ScoreClient, cache_redis: redis.Redis) -> None:
    lead = leads(1, 202, prefix="s202")[0]
    result = score_lead.delay(lead).get(timeout=10)
    (scored,) = poll(lambda: events_of(cache_redis, "lead.scored", lead["id"]), what="a lead.scored event")
    assert set(scored) == EVENT_FIELDS and scored["schema"] == 1 and scored["type"] == "lead.scored"
    assert (scored["model"], scored["model_version"]) == (result["model"], result["model_version"])
    assert (scored["score"], scored["confidence"], scored["escalated"]) == (result["score"], result["confidence"], result["escalated"])
    assert datetime.fromisoformat(scored["ts"]).tzinfo is not None
    poll(lambda: client.lookup(lead), what="the worker's cache write")
    (hit,) = poll(lambda: events_of(cache_redis, "lead.cache_hit", lead["id"]), what="a lead.cache_hit event")
    assert set(hit) == EVENT_FIELDS and hit["probability"] == result["probability"]


def test_events_tail_prints_new_events_live(worker: Path) -> None:
    lead = leads(1, 303, prefix="s303")[0]
    tail = subprocess.Popen([LEADSCORE, "events", "tail", "--type", "lead.scored", "--count", "1", "--timeout", "30"],
                            stdout=subprocess.PIPE, text=True)
    try:
        # Keep scoring until the tail, once listening, has seen one (bounded by its own timeout)
        while tail.poll() is None:
            score_lead.delay(lead).get(timeout=10)
        out = tail.communicate(timeout=5)[0]
    finally:
        if tail.poll() is None:
            tail.kill()
            tail.communicate(timeout=5)
    assert tail.returncode == 0
    (line,) = out.splitlines()
    assert json.loads(line)["lead_id"] == lead["id"]


def test_escalated_lead_reaches_the_deep_tier_and_the_followup(client: ScoreClient, cache_redis: redis.Redis, models_dir: Path) -> None:
    batch = leads(40, 404, prefix="s404")
    results = predict_batch.delay(batch).get(timeout=20)
    # the threshold training resolved from the spec's escalation budget, kept in the version's card
    threshold = registry_at(models_dir).card(MODEL, results[0]["model_version"])["decision"]["escalation"]["threshold"]
    assert all(r["escalated"] == (r["confidence"] < threshold) for r in results)
    lead = next(lead for lead, r in zip(batch, results) if r["escalated"])
    calm = next(lead for lead, r in zip(batch, results) if not r["escalated"])
    fast = score_lead.delay(lead).get(timeout=10)
    assert fast["escalated"] is True
    score_lead.delay(calm).get(timeout=10)
    (handoff_event,) = poll(lambda: events_of(cache_redis, EventType.LEAD_HANDOFF, lead["id"]), timeout=30, what="the deep tier's handoff event")
    assert events_of(cache_redis, "lead.escalated", lead["id"])
    handoff = handoff_event["handoff"]
    assert handoff["fast"]["probability"] == fast["probability"] and handoff["model_version"] == fast["model_version"]
    assert set(handoff["features"]) == set(k for k in lead if k != "id")
    deep = handoff["deep"]
    assert abs(deep["probability"] - fast["probability"]) <= 1e-4  # full precision vs ONNX float32
    e = deep["explanation"]
    assert e["base_value"] + sum(c["contribution"] for c in e["top"]) + e["rest"] == pytest.approx(logit(e["probability"]), abs=1e-9)
    poll(lambda: events_of(cache_redis, "lead.scored", calm["id"]), what="the calm lead's lead.scored event")
    assert not events_of(cache_redis, "lead.escalated", calm["id"])


def test_explanations_add_up_through_the_worker(worker: Path) -> None:
    lead = leads(1, 505, prefix="s505")[0]
    result = score_lead.delay(lead, explain=True).get(timeout=20)
    e = result["explanation"]
    assert len(e["top"]) == get_settings().explain_top_k
    assert e["base_value"] + sum(c["contribution"] for c in e["top"]) + e["rest"] == pytest.approx(logit(e["probability"]), abs=1e-9)
    assert abs(e["probability"] - result["probability"]) <= 1e-4
    assert explain_lead.delay(lead).get(timeout=20)["explanation"] == e
    assert "explanation" not in score_lead.delay(lead).get(timeout=10)


def test_new_version_never_serves_the_old_versions_score_and_prewarm_refills(
    isolated_dbs: dict[str, str], models_dir: Path, tmp_path: Path
) -> None:
    models = copy_specs(tmp_path / "models")
    copy_store(models_dir, models)  # the session's versions, v1 the champion, in a store of this test's own
    urls = isolated_dbs
    env = worker_env(models_dir=str(models), **urls)
    settings = Settings(models_dir=models, database_url=store_url(models), **urls)
    lead = leads(1, 606, prefix="s606")[0]
    spec = registry_at(models).spec(MODEL)
    digest = feature_digest(spec.sha256, encode_leads(spec, [lead]).X[0])
    with ScoreClient(settings, client_app(env)) as client:
        with running_worker(env, tmp_path / "v1.log", queues="scoring,batch", concurrency=1):
            assert client.score(lead)["model_version"] == "v1"
            assert poll(lambda: client.lookup(lead), what="v1's cache write")["model_version"] == "v1"
        # A new version (registered for real: a copied directory would carry v1's identity and be refused)
        assert train_and_register(registry_at(models), MODEL, rows=1500, folds=3, seed=5)["version"] == "v2"
        with running_worker(env, tmp_path / "v2.log", queues="scoring,batch", concurrency=1):
            cache = redis.Redis.from_url(urls["cache_url"])
            assert cache.exists(entry_key(MODEL, "v1", digest))
            # From the moment the new worker publishes the version it serves (its warm-up, which may
            # end after it first answers a ping; until then v1 is the published version)
            poll(lambda: cache.get(version_key(MODEL)) == b"v2", timeout=30, what="v2 published by the new worker")

            def v2_hit() -> dict[str, Any] | None:
                found = client.lookup(lead)
                assert found is None or found["model_version"] == "v2", "served an old version's score"
                return found

            # Nobody scores the lead again: the new worker's prewarm caches it for v2
            assert poll(v2_hit, timeout=30, what="the prewarmed v2 entry")["cached"] is True
    assert "prewarming" in (tmp_path / "v2.log").read_text()


def test_a_prewarm_while_the_model_fails_caches_nothing(isolated_dbs: dict[str, str], models_dir: Path, tmp_path: Path) -> None:
    # Given leads scored by v1 (so they are recently active) whose cache entries have expired
    models = copy_specs(tmp_path / "models")
    copy_store(models_dir, models)  # v1 the champion, in a store (and an artifact cache) of this test's own
    env = worker_env(models_dir=str(models), **isolated_dbs)
    app = client_app(env)
    batch = leads(4, 808, prefix="s808")
    cache = redis.Redis.from_url(isolated_dbs["cache_url"])

    def entries() -> list[bytes]:
        return [k for k in cache.scan_iter(match=f"leadscore:cache:{{{MODEL}}}:*") if not k.endswith(b":version")]

    with running_worker(env, tmp_path / "v1.log", queues="scoring,batch", concurrency=1):
        for lead in batch:
            assert app.send_task("leadscore.score_lead", args=[lead]).get(timeout=10)["served_by"] == "onnx"
        poll(lambda: len(entries()) == len(batch), what="v1's cache entries")
    cache.delete(*entries())
    # When the model fails (its artifact no longer matches its checksum) and a prewarm runs
    with open(models / MODEL / "v1" / "model.onnx", "ab") as artifact:
        artifact.write(b"tampered")
    with running_worker(env, tmp_path / "broken.log", queues="scoring,batch", concurrency=1):
        report = app.send_task("leadscore.prewarm_cache", args=[[MODEL]]).get(timeout=30)
        served = app.send_task("leadscore.score_lead", args=[batch[0]]).get(timeout=10)
    # Then the rules served, and neither the prewarm nor the score cached anything
    assert served["served_by"] == "fallback"
    assert "skipped" in report[MODEL], report
    assert entries() == []


def test_cache_outage_slows_scoring_but_never_fails_it(isolated_dbs: dict[str, str], models_dir: Path, tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nobody listens on: connections are refused
        probe.bind(("127.0.0.1", 0))
        refused = probe.getsockname()[1]
    hanging = socket.socket()  # a "Redis" that accepts connections and never answers
    hanging.bind(("127.0.0.1", 0))
    hanging.listen(16)
    urls = {k: v for k, v in isolated_dbs.items() if k != "cache_url"}
    env = worker_env(models_dir=str(models_dir), cache_url=f"redis://127.0.0.1:{refused}/0", **urls)
    settings = Settings(models_dir=models_dir, cache_url=f"redis://127.0.0.1:{hanging.getsockname()[1]}/0", **urls)
    log = tmp_path / "worker.log"
    try:
        with running_worker(env, log, queues="scoring", concurrency=1):
            app = client_app(env)
            batch = leads(5, 707, prefix="s707")
            # The worker cannot reach its cache or event streams: scores still come back
            for lead in batch:
                assert app.send_task("leadscore.score_lead", args=[lead]).get(timeout=10)["lead_id"] == lead["id"]
            # The client's cache hangs: the first lookup pays the timeout, later ones skip the cache
            with ScoreClient(settings, app) as client:
                assert client.lookup(batch[0]) is None
                assert not client.effects.cache.store.available
                for lead in batch[1:]:
                    started = time.monotonic()
                    assert client.lookup(lead) is None
                    assert time.monotonic() - started < settings.cache_timeout_seconds
                results = [client.score(lead) for lead in batch]
            assert [r["lead_id"] for r in results] == [lead["id"] for lead in batch]
            assert not any(r.get("cached") for r in results)
            poll(lambda: "cache Redis unavailable" in log.read_text(), what="the worker logging its cache outage")
    finally:
        hanging.close()
