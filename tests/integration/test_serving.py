"""score_lead and predict_batch through a real broker, backend and prefork worker."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from leadscore import predict_batch, score_lead
from ml_core.errors import InvalidBatchError, InvalidLeadError
from ml_core.onnx_model import OnnxScorer
from ml_core.synthetic import generate
from tests.conftest import TEST_REDIS
from tests.factories import leads
from tests.integration.conftest import copy_specs
from tests.integration.metrics import invalid_count
from tests.integration.workers import client_app, closing_client_app, running_worker, worker_env
from tests.stores import registry_at, store_url
from tests.waits import poll

pytestmark = pytest.mark.broker

RESULT_KEYS = {"lead_id", "score", "probability", "label", "confidence", "escalated", "percentile", "model", "model_version", "served_by", "latency_ms"}


def test_score_lead_round_trip_returns_the_documented_object(worker: Path, models_dir: Path) -> None:
    lead = leads(1)[0]
    result = score_lead.delay(lead).get(timeout=10)
    assert set(result) == RESULT_KEYS
    assert result["lead_id"] == lead["id"]
    assert result["served_by"] == "onnx"
    assert result["model_version"] == registry_at(models_dir).champion("lead_scorer")
    assert 0 <= result["score"] <= 100
    assert result["label"] in {"hot", "warm", "cold"}
    assert result["confidence"] == pytest.approx(max(result["probability"], 1 - result["probability"]), abs=1e-6)
    assert 0 <= result["percentile"] <= 100


def test_same_lead_same_score_and_worker_matches_in_process_onnx(worker: Path, models_dir: Path) -> None:
    batch = leads(20, seed=11)
    first = [score_lead.delay(lead).get(timeout=10)["probability"] for lead in batch]
    again = [score_lead.delay(lead).get(timeout=10)["probability"] for lead in batch]
    assert first == again
    registry = registry_at(models_dir)
    artifact = registry.load("lead_scorer")
    spec = registry.spec("lead_scorer")
    X = generate("lead_scorer", 20, 11)[list(spec.feature_names)].to_numpy(np.float32)
    local = OnnxScorer("lead_scorer", artifact.version, artifact.onnx).predict_proba(X)
    native = registry.load_native("lead_scorer", artifact.version).predict_proba(X)[:, 1]
    assert np.allclose(first, local, atol=1e-6)
    assert np.max(np.abs(np.asarray(first) - native)) <= artifact.card["metrics"]["parity_tolerance"]


def test_bad_lead_raises_typed_error_naming_lead_and_field_and_is_not_retried(worker: Path, worker_metrics_port: int) -> None:
    lead = {**leads(1)[0], "id": "lead-bad-1", "timeline_urgency": 7}
    refused_before = invalid_count(worker_metrics_port, "lead_scorer")
    result = score_lead.delay(lead)
    with pytest.raises(InvalidLeadError) as caught:
        result.get(timeout=10)
    assert caught.value.lead_id == "lead-bad-1"
    assert caught.value.fields == ["timeline_urgency"]
    assert "out of range" in str(caught.value)
    assert result.state == "FAILURE"
    # The task body ran once: a retry would have refused the lead again before the final FAILURE
    assert invalid_count(worker_metrics_port, "lead_scorer") == refused_before + 1


def test_predict_batch_scores_valid_leads_in_order_beside_invalid_ones(worker: Path) -> None:
    batch = leads(50, seed=3)
    batch[5] = {**batch[5], "questions_asked": "many"}
    batch[17] = "not a lead"
    batch[30] = {**batch[30], "surprise": 1}
    results = predict_batch.delay(batch).get(timeout=20)
    assert len(results) == 50
    errors = {i for i, r in enumerate(results) if "error" in r}
    assert errors == {5, 17, 30}
    assert results[5]["problems"] == [{"field": "questions_asked", "problem": "expected a number, got string"}]
    assert results[30]["problems"][0]["field"] == "surprise"
    for i, r in enumerate(results):
        if i not in errors:
            assert r["lead_id"] == batch[i]["id"] and set(r) == RESULT_KEYS
    single = score_lead.delay(batch[0]).get(timeout=10)
    assert single["probability"] == results[0]["probability"]


def test_predict_batch_refuses_non_list_and_oversized_batches(worker: Path) -> None:
    with pytest.raises(InvalidBatchError, match="JSON array"):
        predict_batch.delay({"id": "x"}).get(timeout=10)
    with pytest.raises(InvalidBatchError, match="max_batch_size"):
        predict_batch.delay([{}] * 10_001).get(timeout=20)


def test_a_model_tampered_while_workers_serve_it_is_refused_by_batch_and_scoring_workers_alike(
    redis_available: None, models_dir: Path, tmp_path: Path
) -> None:
    # Given a scoring worker and a batch worker, each already serving the champion by ONNX
    root = copy_specs(tmp_path / "models")
    version = registry_at(models_dir).champion("lead_scorer")
    shutil.copytree(models_dir / "lead_scorer" / version, root / "lead_scorer" / version)
    # (another host: its own artifact cache, the session's state store)
    env = worker_env(models_dir=str(root), database_url=store_url(models_dir), broker_url=f"{TEST_REDIS}/13",
                     result_backend=f"{TEST_REDIS}/14", reload_check_seconds="0.5")
    lead = leads(1)[0]
    with closing_client_app(env) as app, running_worker(env, tmp_path / "scoring.log", queues="scoring", concurrency=1), \
            running_worker(env, tmp_path / "batch.log", queues="batch", concurrency=1):
        def served() -> tuple[str, str]:
            scored = app.send_task("leadscore.score_lead", args=[lead]).get(timeout=10)
            batch = app.send_task("leadscore.predict_batch", args=[[lead]]).get(timeout=10)[0]
            return scored["served_by"], batch["served_by"]

        assert served() == ("onnx", "onnx")
        # When the served file is tampered with on disk, neither worker restarting
        with open(root / "lead_scorer" / version / "model.onnx", "ab") as f:
            f.write(b"\0")

        # Then both paths refuse it by their next reload check, and say why
        poll(lambda: served() == ("fallback", "fallback"), timeout=30, what="both workers refusing the tampered file")
        batch = app.send_task("leadscore.predict_batch", args=[[lead]]).get(timeout=10)[0]
        assert "model.onnx fails its checksum" in batch["fallback_reason"]
    assert "served file changed on disk and is refused" in (tmp_path / "batch.log").read_text()


def test_tampered_model_is_refused_visibly_and_rules_serve(redis_available: None, models_dir: Path, tmp_path: Path) -> None:
    # Given a registry whose champion ONNX file was modified after registration
    tampered = copy_specs(tmp_path / "models")
    version = registry_at(models_dir).champion("lead_scorer")
    shutil.copytree(models_dir / "lead_scorer" / version, tampered / "lead_scorer" / version)
    with open(tampered / "lead_scorer" / version / "model.onnx", "ab") as f:
        f.write(b"\0")
    # When a worker of its own (own broker databases) serves it
    env = worker_env(models_dir=str(tampered), database_url=store_url(models_dir), broker_url=f"{TEST_REDIS}/13", result_backend=f"{TEST_REDIS}/14")
    log = tmp_path / "worker.log"
    with running_worker(env, log, queues="scoring", concurrency=1):
        result = client_app(env).send_task("leadscore.score_lead", args=[leads(1)[0]]).get(timeout=10)
    # Then the refusal shows in the result and in the log, and the rules still score the lead
    assert result["served_by"] == "fallback"
    assert result["model_version"] == "rules"
    assert "model.onnx fails its checksum" in result["fallback_reason"]
    assert "refused, serving rule-based fallback" in log.read_text()
    assert "model.onnx fails its checksum" in log.read_text()
