"""Weekly retraining from recorded outcomes works for every kind of model, not only lead_scorer:
churn (a lead model served by its own task) and the three pair models (whose outcomes name a
property and train on the derived pair features the lead was ranked with). Real Redis,
real prefork worker; in each test the market moves, so a retrain on the outcomes must beat the
champion to be registered.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import redis

from leadscore.stores.events import stream_key
from leadscore.worker.snapshots import snapshots_key
from ml_core.errors import InvalidOutcomeError
from ml_core.lifecycle import train_and_register
from ml_core.outcomes import subject
from ml_core.synthetic import generate
from tests.integration.conftest import copy_specs
from tests.integration.test_lifecycle import URLS, flush_lifecycle_dbs, lifecycle_env, now_iso, poll
from tests.integration.workers import client_app, running_worker
from tests.stores import registry_at

pytestmark = pytest.mark.slow
CHURN, MATCHER = "churn_predictor", "property_matcher"
PAIR_MODELS = (MATCHER, "property_interest_predictor", "viewing_probability_predictor")
LEADSCORE = str(Path(sys.executable).parent / "leadscore")


class Stack:
    def __init__(self, env: dict[str, str], models: Path) -> None:
        self.env = env
        self.app = client_app(env)
        self.registry = registry_at(models)
        self.snapshots = redis.Redis.from_url(URLS["lock_url"])

    def run_all(self, task: str, calls: list[tuple[list[Any], dict[str, Any]]], timeout: float = 60.0) -> list[Any]:
        pending = [self.app.send_task(task, args=args, kwargs=kwargs) for args, kwargs in calls]
        return [p.get(timeout=timeout) for p in pending]

    def snapshot(self, model: str, subject_id: str) -> dict[str, Any] | None:
        newest = self.snapshots.lindex(snapshots_key(model, subject_id), 0)
        return json.loads(newest)["f"] if newest else None


@pytest.fixture(scope="module")
def stack(redis_available: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("model-outcomes")
    models = copy_specs(root / "models", (CHURN, *PAIR_MODELS))
    for name in (CHURN, *PAIR_MODELS):
        train_and_register(registry_at(models), name, rows=3000, folds=3, repeats=1)
    env = lifecycle_env(root, models, reload_check_seconds="0.3")
    with running_worker(env, root / "worker.log", queues="scoring,training", concurrency=2):
        yield Stack(env, models)
    flush_lifecycle_dbs()


def buyers(n: int, seed: int) -> tuple[list[dict[str, Any]], list[list[dict[str, Any]]]]:
    """``n`` leads with preferences, and 10 listings of its own for each."""
    pairs = generate(MATCHER, n * 10, seed)
    leads, listings = [], []
    for i in range(n):
        rows = pairs.iloc[i * 10 : (i + 1) * 10].to_dict("records")
        leads.append({"id": f"buyer-{seed}-{i}", "preferences": {k.split(".", 1)[1]: v for k, v in rows[0].items() if k.startswith("preferences.")}})
        listings.append([
            {"id": f"home-{seed}-{i}-{j}", **{k.split(".", 1)[1]: v for k, v in row.items() if k.startswith("property.")}}
            for j, row in enumerate(rows)
        ])
    return leads, listings


def assert_registered_from_outcomes(result: dict[str, Any], outcomes: int) -> None:
    assert (result["status"], result["role"], result["version"]) == ("registered", "challenger", "v2")
    assert result["training_set"]["outcomes"] == outcomes and result["training_set"]["rule"].startswith("outcomes only")
    assert all(g["passed"] for g in result["gates"])
    assert result["comparison"]["candidate"] > result["comparison"]["champion_metric"] + 0.02


def test_churn_predictor_retrains_from_recorded_churn(stack: Stack) -> None:
    # Given leads whose churn risk was served by predict_churn
    frame = generate(CHURN, 400, 5).drop(columns="churned")
    frame["id"] = [f"churn-{i}" for i in range(len(frame))]
    leads = frame.to_dict("records")
    served = stack.run_all("leadscore.predict_churn", [([lead], {}) for lead in leads])
    assert {r["served_by"] for r in served} == {"onnx"}
    poll(lambda: all(stack.snapshot(CHURN, lead["id"]) for lead in leads[-3:]), what="churn snapshots")
    # When the market moves (leads who open every email now leave) and their churn is recorded
    rng = np.random.default_rng(6)
    middle = float(np.median([lead["email_open_rate"] for lead in leads]))
    churned = [(lead["email_open_rate"] > middle) != (rng.random() < 0.1) for lead in leads]
    recorded = stack.run_all("leadscore.record_outcome", [([lead["id"], bool(y), now_iso()], {"model": CHURN}) for lead, y in zip(leads, churned)])
    assert all(r["with_features"] for r in recorded)
    # Then the weekly retrain learns it from those outcomes, with the features served
    result = stack.app.send_task("leadscore.retrain", args=[CHURN]).get(timeout=180)
    assert_registered_from_outcomes(result, 400)
    row = stack.app.send_task("leadscore.outcome_status", args=[CHURN, leads[3]["id"]]).get(timeout=30)["lead"]
    assert row["features"] == {k: v for k, v in leads[3].items() if k != "id"} and row["outcome"] == int(churned[3])


def test_pair_models_retrain_from_outcomes_of_lead_property_pairs(stack: Stack) -> None:
    # Given 40 leads, each with its own 10 listings ranked by all three pair models
    leads, listings = buyers(40, 7)
    ranked = stack.run_all("leadscore.recommend_properties", [([lead, homes], {"top_k": None}) for lead, homes in zip(leads, listings)])
    assert all(r["models"][m]["served_by"] == "onnx" and len(r["matches"]) == 10 for r in ranked for m in PAIR_MODELS)
    shown = [(lead["id"], m["property_id"]) for lead, r in zip(leads, ranked) for m in r["matches"]]
    poll(lambda: all(stack.snapshot(m, subject(*shown[-1])) for m in PAIR_MODELS), what="pair snapshots")
    rng = np.random.default_rng(8)
    for model in PAIR_MODELS:
        # When the market moves (buyers now go for homes priced well over their budget) and outcomes
        # of the pairs are recorded, by property
        features = {pair: stack.snapshot(model, subject(*pair)) for pair in shown}
        assert all(f is not None for f in features.values())
        middle = float(np.median([f["price_to_budget"] for f in features.values()]))  # type: ignore[index]
        good = {pair: (f["price_to_budget"] > middle) != (rng.random() < 0.1) for pair, f in features.items()}  # type: ignore[index]
        calls = [([lead_id, bool(y), now_iso()], {"model": model, "property_id": home}) for (lead_id, home), y in good.items()]
        recorded = stack.run_all("leadscore.record_outcome", calls)
        assert all(r["with_features"] and r["property_id"] for r in recorded)
        # Then the weekly retrain learns the new taste from the pair outcomes, on the features served
        result = stack.app.send_task("leadscore.retrain", args=[model]).get(timeout=180)
        assert_registered_from_outcomes(result, 400)
        lead_id, home = shown[11]
        cli = subprocess.run([LEADSCORE, "outcomes", model, "--lead", lead_id, "--property", home],
                             env=stack.env, capture_output=True, text=True, timeout=60, check=True)
        status = json.loads(cli.stdout)
        assert (status["outcomes"], status["with_features"]) == (400, 400)
        assert status["lead"]["features"] == features[(lead_id, home)] and status["lead"]["outcome"] == int(good[(lead_id, home)])
    with pytest.raises(InvalidOutcomeError, match="property_id: required"):
        stack.app.send_task("leadscore.record_outcome", args=[leads[0]["id"], True, now_iso()], kwargs={"model": MATCHER}).get(timeout=30)


def test_a_pair_model_challenger_runs_in_shadow_then_serves_its_canary(stack: Stack) -> None:
    # Given the retrain above left v2 as property_matcher's challenger, in shadow
    leads, listings = buyers(3, 9)
    events = redis.Redis.from_url(URLS["cache_url"])

    def rank(i: int) -> dict[str, Any]:
        return stack.app.send_task("leadscore.match_properties", args=[leads[i], listings[i]], kwargs={"top_k": 4}).get(timeout=30)

    def shadowed() -> list[dict[str, str]]:
        found = [{k.decode(): v.decode() for k, v in f.items()} for _, f in events.xrange(stream_key("model.shadow"))]
        return [e for e in found if e["lead_id"] == leads[0]["id"]]

    # When a lead's properties are ranked, the champion answers and the challenger scores the same pairs
    ranked = rank(0)
    assert ranked["models"][MATCHER]["model_version"] == "v1" and "rollout" not in ranked["models"][MATCHER]
    seen = poll(lambda: shadowed() if len(shadowed()) >= 4 else None, what="shadow events of pairs")
    assert {e["property_id"] for e in seen} == {m["property_id"] for m in ranked["matches"]}
    assert all((e["champion_version"], e["challenger_version"]) == ("v1", "v2") for e in seen)
    # When the challenger goes to a 100% canary, the running worker's rankings come from it
    stack.app.send_task("leadscore.set_rollout", args=[MATCHER, "canary", 100.0]).get(timeout=30)
    canary = poll(lambda: (r := rank(1))["models"][MATCHER].get("rollout") and r, what="a canary ranking")
    assert canary["models"][MATCHER]["model_version"] == "v2" and len(canary["matches"]) == 4
