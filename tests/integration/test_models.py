"""The other models through a real broker, backend and prefork worker: churn, matching, profile, fallback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from leadscore import match_properties, predict_churn, predict_churn_batch, recommend_properties, score_lead, score_lead_profile
from leadscore.settings import get_settings
from ml_core.errors import InvalidLeadError
from ml_core.featurizers import featurize_table
from ml_core.onnx_model import OnnxScorer
from ml_core.store.schema import blobs
from ml_core.synthetic import generate
from tests import factories
from tests.conftest import TEST_REDIS
from tests.integration.conftest import ALL_MODELS, copy_specs
from tests.integration.metrics import invalid_count
from tests.integration.workers import client_app, running_worker, worker_env
from tests.stores import copy_store, registry_at
from tests.unit.pairs import PAIR_MODELS, listing, preferences
from tests.waits import poll


def listings(n: int, seed: int = 5) -> list[dict]:
    raw = generate("property_matcher", n, seed)
    props = raw[[c for c in raw.columns if c.startswith("property.")]].rename(columns=lambda c: c.split(".", 1)[1])
    return [{"id": f"prop-{i}", **row} for i, row in enumerate(props.to_dict("records"))]


def test_every_spec_is_trained_and_registered_with_its_card(models_dir: Path) -> None:
    registry = registry_at(models_dir)
    assert set(ALL_MODELS) >= {"lead_scorer", "churn_predictor", *PAIR_MODELS}
    for name in ALL_MODELS:
        card = registry.card(name, registry.champion(name))
        assert card["metrics"]["estimate"] >= card["metrics"]["quality_gate"]
        assert card["metrics"]["parity_max_abs_diff"] <= card["metrics"]["parity_tolerance"]
        assert card["columns"] == list(registry.spec(name).columns)


def test_every_model_appears_in_leadscore_status(worker: Path) -> None:
    from leadscore import app
    from leadscore.cli.status import gather

    def every_model_served() -> dict[str, Any] | None:  # each worker child warms its models in a thread after the fork
        served: dict[str, Any] = gather(app, get_settings(), timeout=5)["workers"]["scoring"]["models"]
        return served if set(served) >= set(ALL_MODELS) else None

    served = poll(every_model_served, timeout=20, what=f"every model of {ALL_MODELS} in leadscore status")
    assert {served[name]["served_by"] for name in ALL_MODELS} == {"onnx"}


def test_status_reports_an_empty_queue_as_zero(worker: Path) -> None:
    from leadscore import app, routes
    from leadscore.cli.status import queue_depths

    settings = get_settings()
    queues = routes.queues(settings)
    depths = queue_depths(app, queues)
    assert all(isinstance(depths[q], int) and depths[q] >= 0 for q in queues), depths


def test_an_invalid_score_lead_call_is_counted_as_an_invalid_lead(worker: Path, worker_metrics_port: int) -> None:
    before = invalid_count(worker_metrics_port, "lead_scorer")
    with pytest.raises(InvalidLeadError):
        score_lead.delay({**factories.lead(), "timeline_urgency": 7}).get(timeout=10)
    assert invalid_count(worker_metrics_port, "lead_scorer") == before + 1


def test_status_shows_the_realized_escalation_rate_and_band_shares_beside_the_card(worker: Path, models_dir: Path) -> None:
    import redis

    from leadscore import app
    from leadscore.cli.status import gather
    from leadscore.stores.cache import store_of
    from leadscore.stores.traffic_mix import mix_key, traffic_mix

    settings = get_settings()
    store = store_of(settings)
    redis.Redis.from_url(settings.cache_url).delete(mix_key("lead_scorer"))
    # Given 300 fresh leads scored one by one by the real worker
    batch = factories.leads(300, 21, prefix="mix")
    results = [p.get(timeout=120) for p in [score_lead.delay(lead) for lead in batch]]
    version = results[0]["model_version"]
    # When the background writer has recorded them (bounded poll of Redis)
    poll(lambda: store.call(lambda r: r.llen(mix_key("lead_scorer"))) == len(batch), what=f"{len(batch)} leads in the traffic mix")
    # Then status reports the share of them escalated and in each band, exactly as the results said
    mix = gather(app, settings, timeout=5)["traffic"]["lead_scorer"][version]
    assert mix["leads"] == len(batch)
    assert mix["escalated"] == round(np.mean([r["escalated"] for r in results]), 4)
    assert mix["bands"]["hot"] == round(np.mean([r["label"] == "hot" for r in results]), 4)
    # and beside it the card's out-of-fold values, which the live shares follow (25 % budget, top 10 % hot;
    # 300 leads: within about 3 standard errors)
    expected = traffic_mix(store, registry_at(models_dir), ["lead_scorer"])["lead_scorer"][version]["expected"]
    assert expected["escalated"] == pytest.approx(0.25, abs=0.001)
    assert abs(mix["escalated"] - expected["escalated"]) < 0.08
    assert abs(mix["bands"]["hot"] - expected["bands"]["hot"]) < 0.06


def test_predict_churn_single_and_batch_agree_and_serve_onnx(worker: Path, models_dir: Path) -> None:
    batch = factories.leads(30, 3, model="churn_predictor")
    batch[4] = {**batch[4], "engagement_trend": 3}
    results = predict_churn_batch.delay(batch).get(timeout=20)
    assert "error" in results[4] and results[4]["problems"][0]["field"] == "engagement_trend"
    single = predict_churn.delay(batch[0]).get(timeout=10)
    assert single["model"] == "churn_predictor" and single["served_by"] == "onnx"
    assert single["model_version"] == registry_at(models_dir).champion("churn_predictor")
    assert single["probability"] == results[0]["probability"]
    with pytest.raises(InvalidLeadError) as caught:
        predict_churn.delay(batch[4]).get(timeout=10)
    assert caught.value.fields == ["engagement_trend"]


def test_match_properties_ranks_every_property_like_the_registered_onnx_model(worker: Path, models_dir: Path) -> None:
    props = listings(300)
    props[10] = {**props[10], "bedrooms": -1}
    lead = {"id": "lead-m", "preferences": preferences(budget_max=450_000, budget_min=0, must_haves=[])}
    result = match_properties.delay(lead, props, top_k=None).get(timeout=20)
    assert result["models"]["property_matcher"]["served_by"] == "onnx"
    assert result["errors"][0]["property_id"] == "prop-10" and result["errors"][0]["error"] == "InvalidPropertyError"
    matches = result["matches"]
    assert len(matches) == 299
    p = [m["scores"]["property_matcher"]["probability"] for m in matches]
    assert p == sorted(p, reverse=True)
    # Then the worker's probabilities are the registered ONNX model's on the same derived features
    registry = registry_at(models_dir)
    spec, artifact = registry.spec("property_matcher"), registry.load("property_matcher")
    raw = generate("property_matcher", 300, 5)
    for key, value in lead["preferences"].items():
        raw[f"preferences.{key}"] = [value] * len(raw) if isinstance(value, list) else value
    X = featurize_table(spec, raw)[list(spec.feature_names)].to_numpy(np.float32)
    local = OnnxScorer(spec.name, artifact.version, artifact.onnx).predict_proba(X)
    by_id = {m["property_id"]: m["scores"]["property_matcher"]["probability"] for m in matches}
    expected = {f"prop-{i}": local[i] for i in range(300) if i != 10}
    assert np.allclose([by_id[k] for k in expected], list(expected.values()), atol=1e-5)
    top = match_properties.delay(lead, props, top_k=5).get(timeout=20)["matches"]
    assert [m["property_id"] for m in top] == [m["property_id"] for m in matches[:5]]


def test_recommendations_order_by_interest_or_viewing(worker: Path) -> None:
    lead = {"id": "lead-r", "preferences": preferences()}
    props = [listing("fits"), listing("far-dear", price=650_000, latitude=40.7), listing("no-photos", photo_count=0, days_on_market=400)]
    for order_by in ("property_interest_predictor", "viewing_probability_predictor"):
        result = recommend_properties.delay(lead, props, top_k=3, order_by=order_by).get(timeout=10)
        assert result["order_by"] == order_by
        ordered = [m["scores"][order_by]["probability"] for m in result["matches"]]
        assert ordered == sorted(ordered, reverse=True)
        assert result["matches"][-1]["property_id"] == "far-dear"
        assert {r["served_by"] for r in result["models"].values()} == {"onnx"}
        assert set(result["matches"][0]["scores"]) == set(PAIR_MODELS)


def test_score_lead_profile_returns_conversion_churn_and_matches_in_one_call(worker: Path) -> None:
    lead = {**factories.lead(), **factories.lead(7, model="churn_predictor"), "id": "lead-p", "preferences": preferences()}
    props = listings(50, seed=8)
    profile = score_lead_profile.delay(lead, props, top_k=3).get(timeout=20)
    assert profile["lead_id"] == "lead-p"
    assert profile["scores"]["lead_scorer"]["model"] == "lead_scorer"
    assert profile["scores"]["churn_predictor"]["model"] == "churn_predictor"
    conversion = {k: v for k, v in lead.items() if k in factories.lead()}
    assert profile["scores"]["lead_scorer"]["probability"] == score_lead.delay(conversion).get(timeout=10)["probability"]
    ranked = profile["properties"]["matches"]
    assert len(ranked) == 3 and set(ranked[0]["scores"]) == set(PAIR_MODELS)
    alone = score_lead_profile.delay(lead).get(timeout=10)
    assert alone["properties"] is None
    assert alone["scores"]["churn_predictor"]["probability"] == profile["scores"]["churn_predictor"]["probability"]


def test_score_lead_profile_reports_every_invalid_part_at_once(worker: Path) -> None:
    lead = {**factories.lead(), **factories.lead(7, model="churn_predictor"), "id": "lead-bad", "preferences": preferences(bedrooms_min=1.5)}
    lead["timeline_urgency"] = 4
    del lead["email_open_rate"]
    with pytest.raises(InvalidLeadError) as caught:
        score_lead_profile.delay(lead, [listing("x")]).get(timeout=10)
    assert caught.value.lead_id == "lead-bad"
    assert caught.value.fields == ["timeline_urgency", "email_open_rate", "preferences.bedrooms_min"]


def test_every_model_falls_back_to_its_rules_when_its_artifact_is_missing(redis_available: None, models_dir: Path, tmp_path: Path) -> None:
    # Given every champion's model.onnx missing from the cache and from the store
    broken = copy_specs(tmp_path / "models", ALL_MODELS)
    registry = copy_store(models_dir, broken)
    for name in ALL_MODELS:
        version = registry.champion(name)
        with registry.store.writing() as conn:
            conn.execute(blobs.delete().where(blobs.c.sha256 == registry.card(name, version)["files"]["model.onnx"]))
    env = worker_env(models_dir=str(broken), broker_url=f"{TEST_REDIS}/13", result_backend=f"{TEST_REDIS}/14")
    log = tmp_path / "worker.log"
    lead = {**factories.lead(), **factories.lead(7, model="churn_predictor"), "id": "lead-f", "preferences": preferences()}
    # When a worker of its own serves them
    with running_worker(env, log, queues="scoring,batch", concurrency=1):
        app = client_app(env)
        profile = app.send_task("leadscore.score_lead_profile", args=[lead, [listing("a"), listing("b", price=900_000)]]).get(timeout=20)
        churn = app.send_task("leadscore.predict_churn_batch", args=[factories.leads(3, 7, model="churn_predictor")]).get(timeout=20)
    # Then every model is served by its rules, saying why, and still scores
    served = [*profile["scores"].values(), *profile["properties"]["models"].values(), *churn]
    assert len(served) == 8
    for result in served:
        assert result["served_by"] == "fallback" and result["model_version"] == "rules"
        assert "model.onnx is missing" in result["fallback_reason"]
    assert [m["property_id"] for m in profile["properties"]["matches"]] == ["a", "b"]
    text = log.read_text()
    for name in ALL_MODELS:
        assert f"model {name} refused, serving rule-based fallback" in text


@pytest.mark.parametrize(("model", "argv"), [("lead_scorer", ["score", "--sample"]),
                                             ("churn_predictor", ["score", "--sample", "--model", "churn_predictor"])])
def test_each_model_scores_its_own_example_from_the_cli(worker: Path, model: str, argv: list[str]) -> None:
    import json

    from click.testing import CliRunner

    from leadscore.cli.main import main

    result = CliRunner().invoke(main, argv)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["model"] == model


def test_match_ranks_the_example_listings_from_the_cli(worker: Path) -> None:
    import json

    from click.testing import CliRunner

    from leadscore.cli.main import main

    result = CliRunner().invoke(main, ["match", "--sample", "--top-k", "3"])
    assert result.exit_code == 0, result.output
    ranked = json.loads(result.output)
    assert ranked["lead_id"] == "lead-42" and len(ranked["matches"]) == 3
