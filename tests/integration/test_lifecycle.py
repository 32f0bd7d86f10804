"""Model lifecycle through a real Redis and a real prefork worker, in the order it happens:
outcomes survive a worker crash; a retrain no better than the champion is refused with its
numbers; the market moves and a retrain that beats the champion becomes the challenger; shadow
and canary behave as stated; promote and rollback reach the running worker; a corrupt version
never replaces a working one; two retrains never run together; drift is detected; Beat sends the
lifecycle entries. Tests share one worker environment and run in file order.
"""

from __future__ import annotations

import collections
import json
import os
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import redis
from celery import Celery

from leadscore.stores.events import stream_key
from leadscore.worker.snapshots import drift_key, snapshots_key
from ml_core import rollout
from ml_core.errors import ArtifactIntegrityError, RegistrationRefusedError
from ml_core.lifecycle import train_and_register
from ml_core.registry import ONNX_FILE
from ml_core.synthetic import generate
from tests.conftest import TEST_REDIS
from tests.factories import leads
from tests.integration.conftest import copy_specs
from tests.integration.test_faults import start_beat
from tests.integration.workers import client_app, running_worker, stop_group, worker_env
from tests.stores import registry_at, set_pointers
from tests.waits import poll

pytestmark = [pytest.mark.slow, pytest.mark.broker]
MODEL = "lead_scorer"
RELOAD_SECONDS = 0.3




def now_iso() -> str:
    return datetime.now(UTC).isoformat()


class Stack:
    """The module's worker (scoring + training, two children), restartable, with its client app."""

    def __init__(self, env: dict[str, str], logs: Path, models: Path) -> None:
        self.env, self.logs, self.models = env, logs, models
        self.app: Celery = client_app(env)
        self.registry = registry_at(models)
        self.events = redis.Redis.from_url(env["LEADSCORE_CACHE_URL"])
        self.locks = redis.Redis.from_url(env["LEADSCORE_LOCK_URL"])
        self.starts = 0

    @contextmanager
    def worker(self) -> Iterator[Any]:
        self.starts += 1
        with running_worker(self.env, self.logs / f"worker-{self.starts}.log", queues="scoring,training", concurrency=2) as proc:
            yield proc

    def run(self, task: str, *args: Any, timeout: float = 60.0, **kwargs: Any) -> Any:
        return self.app.send_task(task, args=list(args), kwargs=kwargs).get(timeout=timeout)

    def score(self, batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
        pending = [self.app.send_task("leadscore.score_lead", args=[lead]) for lead in batch]
        return [p.get(timeout=30) for p in pending]

    def snapshotted(self, batch: list[dict[str, Any]]) -> None:
        """Bounded wait until the background writer has written the last lead's snapshot."""
        poll(lambda: all(self.locks.exists(snapshots_key(MODEL, lead["id"])) for lead in batch[-3:]), what="snapshots of the last leads")

    def stream(self, event: str) -> list[dict[str, str]]:
        return [{k.decode(): v.decode() for k, v in f.items()} for _, f in self.events.xrange(stream_key(event))]


URLS = {"broker_url": f"{TEST_REDIS}/13", "result_backend": f"{TEST_REDIS}/14", "cache_url": f"{TEST_REDIS}/9", "lock_url": f"{TEST_REDIS}/15"}


def flush_lifecycle_dbs() -> None:
    for url in URLS.values():
        redis.Redis.from_url(url).flushdb()


def lifecycle_env(root: Path, models: Path, **extra: str) -> dict[str, str]:
    """A worker environment on emptied databases of the lifecycle tests' own, retraining on small data.
    A retrain must beat the champion by 0.02 AUC: one on the same data never does."""
    flush_lifecycle_dbs()
    return worker_env(
        models_dir=str(models), data_dir=str(root / "data"), **URLS,
        retrain_base_rows="3000", retrain_folds="3", retrain_min_outcomes="300", retrain_champion_tolerance="-0.02", **extra,
    )


@pytest.fixture(scope="module")
def stack(redis_available: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("lifecycle")
    models = copy_specs(root / "models")
    train_and_register(registry_at(models), MODEL, rows=3000, folds=3, repeats=1)
    env = lifecycle_env(
        root, models, reload_check_seconds=str(RELOAD_SECONDS), drift_min_samples="200", retrain_lock_ttl_seconds="5"
    )
    yield Stack(env, root, models)
    flush_lifecycle_dbs()


@pytest.fixture(scope="module")
def lifecycle_worker(stack: Stack) -> Iterator[Any]:
    """The worker most tests share; the first test runs its own, to crash it."""
    with stack.worker() as proc:
        yield proc


def test_outcomes_keep_their_scored_features_and_survive_a_worker_crash(stack: Stack) -> None:
    batch = leads(40, 1, prefix="out")
    with stack.worker() as proc:
        # Given leads scored by a worker, and outcomes recorded for them (and one never scored)
        stack.score(batch)
        stack.snapshotted(batch)
        truth = generate(MODEL, 40, 1)["converted"].tolist()
        recorded = [stack.run("leadscore.record_outcome", lead["id"], bool(y), now_iso()) for lead, y in zip(batch, truth)]
        unscored = stack.run("leadscore.record_outcome", "never-scored", True, now_iso())
        # When the whole worker dies at once, right after the last outcome came back
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    assert all(r["with_features"] and r["scored_version"] == "v1" for r in recorded)
    assert unscored["with_features"] is False
    # Then a new worker finds every outcome, with exactly the features the lead was scored with
    with stack.worker():
        status = stack.run("leadscore.outcome_status", MODEL, batch[7]["id"])
    assert (status["outcomes"], status["with_features"], status["without_features"]) == (41, 40, 1)
    stored = status["lead"]["features"]
    assert stored == {k: v for k, v in batch[7].items() if k != "id"}
    assert status["lead"]["outcome"] == truth[7]


def test_a_retrain_no_better_than_the_champion_is_refused_with_the_numbers(stack: Stack, lifecycle_worker: Any) -> None:
    before = stack.registry.versions(MODEL)
    with pytest.raises(RegistrationRefusedError) as refused:
        stack.run("leadscore.retrain", MODEL, timeout=120)
    message = str(refused.value)
    assert "champion: roc_auc" in message and "against champion v1's" in message and "beyond tolerance -0.02" in message
    assert stack.registry.versions(MODEL) == before  # nothing registered, not even half
    entry = rollout.history(stack.registry, MODEL)[-1]
    assert entry["event"] == "retrain_refused"
    champion_gate = next(g for g in entry["gates"] if g["name"] == "champion")
    assert champion_gate["passed"] is False and champion_gate["value"] < champion_gate["threshold"]
    assert entry["training_set"]["outcomes"] == 40 and entry["training_set"]["base"] == 3000
    assert any(e["type"] == "model.retrain_refused" for e in stack.stream("model.retrain_refused"))


def test_when_the_market_moves_a_retrain_that_beats_the_champion_becomes_challenger(stack: Stack, lifecycle_worker: Any) -> None:
    # Given the market moved: now the leads in no hurry are the ones who sign
    batch = leads(600, 2, prefix="moved")
    stack.score(batch)
    stack.snapshotted(batch)
    rng = np.random.default_rng(3)
    for lead in batch:
        converted = (lead["timeline_urgency"] < 0.4) != (rng.random() < 0.1)
        stack.run("leadscore.record_outcome", lead["id"], bool(converted), now_iso())
    # When retraining on those outcomes
    result = stack.run("leadscore.retrain", MODEL, timeout=120)
    # Then it is registered as challenger, with every gate's numbers, in shadow by default
    assert (result["status"], result["role"], result["version"]) == ("registered", "challenger", "v2")
    assert result["training_set"]["rule"].startswith("outcomes only")
    assert all(g["passed"] for g in result["gates"])
    comparison = result["comparison"]
    assert comparison["candidate"] > comparison["champion_metric"] + 0.02
    card = stack.registry.card(MODEL, "v2")
    assert {g["name"] for g in card["gates"]} == {"quality_gate", "onnx_parity", "champion"}
    assert {"report.md", "report_roc.png", "profile.json"} <= set(card["files"])
    assert rollout.challenger(stack.registry, MODEL) == rollout.Challenger("v2", "shadow", 0.0, rollout.challenger(stack.registry, MODEL).since)
    assert stack.registry.champion(MODEL) == "v1"


def test_shadow_scores_the_same_leads_and_never_returns_its_results(stack: Stack, lifecycle_worker: Any) -> None:
    batch = leads(30, 4, prefix="shadow")
    results = stack.score(batch)
    assert {r["model_version"] for r in results} == {"v1"} and not any("rollout" in r for r in results)
    ids = {lead["id"] for lead in batch}

    def all_shadowed() -> list[dict[str, str]] | None:
        found = [e for e in stack.stream("model.shadow") if e["lead_id"] in ids]
        return found if len(found) == len(ids) else None

    shadowed = poll(all_shadowed, what="shadow events")
    by_id = {r["lead_id"]: r for r in results}
    for event in shadowed:
        assert (event["champion_version"], event["challenger_version"]) == ("v1", "v2")
        assert float(event["champion_probability"]) == by_id[event["lead_id"]]["probability"]
    assert any(abs(float(e["challenger_probability"]) - float(e["champion_probability"])) > 0.05 for e in shadowed)


def test_canary_serves_a_deterministic_share_of_leads_by_id(stack: Stack, lifecycle_worker: Any) -> None:
    stack.run("leadscore.set_rollout", MODEL, "canary", 30.0)
    state = rollout.challenger(stack.registry, MODEL)
    batch = leads(300, 5, prefix="canary")
    expected = {lead["id"]: state.serves(MODEL, lead["id"]) for lead in batch}
    first_canary = next(lead for lead in batch if expected[lead["id"]])
    poll(lambda: stack.score([first_canary])[0]["model_version"] == "v2", timeout=RELOAD_SECONDS + 10, what="canary picked up")
    results = stack.score(batch)
    for r in results:
        assert (r["model_version"] == "v2") == expected[r["lead_id"]]
        assert (r.get("rollout") == "canary") == expected[r["lead_id"]]
    share = sum(expected.values()) / len(batch)
    assert 0.2 < share < 0.4
    again = stack.score(batch[:40])
    assert [r["model_version"] for r in again] == [r["model_version"] for r in results[:40]]


def test_promote_and_rollback_change_what_the_running_worker_serves(stack: Stack, lifecycle_worker: Any) -> None:
    lead = next(lead for lead in leads(50, 6, prefix="promo") if not rollout.challenger(stack.registry, MODEL).serves(MODEL, lead["id"]))
    assert stack.score([lead])[0]["model_version"] == "v1"
    promoted = stack.run("leadscore.promote", MODEL)
    assert (promoted["version"], promoted["previous"]) == ("v2", "v1")
    started = time.monotonic()
    poll(lambda: stack.score([lead])[0]["model_version"] == "v2", timeout=RELOAD_SECONDS + 10, what="promotion served")
    assert time.monotonic() - started < RELOAD_SECONDS + 5
    rolled = stack.run("leadscore.rollback", MODEL)
    assert (rolled["version"], rolled["previous"]) == ("v1", "v2")
    poll(lambda: stack.score([lead])[0]["model_version"] == "v1", timeout=RELOAD_SECONDS + 10, what="rollback served")
    assert lifecycle_worker.poll() is None  # the same worker process throughout: no restart
    assert [e["type"] for e in stack.stream("model.promoted")] == ["model.promoted"]
    assert [e["version"] for e in stack.stream("model.rolled_back")] == ["v1"]
    assert [e["event"] for e in rollout.history(stack.registry, MODEL)[-2:]] == ["promoted", "rolled_back"]
    assert any(e["type"] == "model.reloaded" for e in stack.stream("model.reloaded"))
    # And the rolled-back version can be made challenger again, by name
    again = stack.run("leadscore.set_challenger", MODEL, "v2")
    assert (again["event"], again["version"], again["mode"]) == ("challenger_set", "v2", "none")
    assert rollout.challenger(stack.registry, MODEL).version == "v2"


def test_a_corrupt_version_never_replaces_a_working_one(stack: Stack, lifecycle_worker: Any) -> None:
    # Given a version whose model file was damaged after registration
    card = train_and_register(stack.registry, MODEL, rows=1500, folds=3, repeats=1, seed=9, champion=False)
    bad = card["version"]
    onnx = stack.registry.root / MODEL / bad / ONNX_FILE
    onnx.write_bytes(onnx.read_bytes()[:-10])
    # Then it can be neither a challenger nor promoted
    with pytest.raises(ArtifactIntegrityError):
        rollout.set_challenger(stack.registry, MODEL, bad)
    set_pointers(stack.registry, MODEL, challenger=bad, challenger_mode="none")
    with pytest.raises(ArtifactIntegrityError):
        stack.run("leadscore.promote", MODEL)
    assert stack.registry.champion(MODEL) == "v1"
    # And when the champion pointer is forced onto it, the running worker keeps serving v1 and alerts
    lead = leads(1, 7, prefix="corrupt")[0]
    stack.registry.set_champion(MODEL, bad)
    try:
        served: list[str] = []

        def alerted() -> list[dict[str, str]]:
            served.extend(r["model_version"] for r in stack.score([lead]))  # a reload is checked on a task
            return [e for e in stack.stream("model.reload_failed") if e["version"] == bad]

        alert = poll(alerted, timeout=RELOAD_SECONDS + 10, what="reload_failed alert")
        assert "checksum" in alert[0]["detail"]
        served += [r["model_version"] for r in stack.score([lead] * 5)]
        assert set(served) == {"v1"}
    finally:
        stack.registry.set_champion(MODEL, "v1")
        set_pointers(stack.registry, MODEL, challenger=None, challenger_mode=None)


def test_two_concurrent_retrains_do_not_both_run(stack: Stack, lifecycle_worker: Any) -> None:
    def outcome_of(pending: Any) -> str:
        try:
            return pending.get(timeout=120)["status"]
        except RegistrationRefusedError:
            return "ran, refused"

    pending = [stack.app.send_task("leadscore.retrain", args=[MODEL]) for _ in range(2)]
    with ThreadPoolExecutor(2) as pool:
        statuses = sorted(pool.map(outcome_of, pending))
    assert statuses.count("skipped") == 1, statuses
    assert not stack.locks.exists("leadscore:retrain:{lead_scorer}")  # released when done


def test_drift_check_flags_a_moved_feature(stack: Stack, lifecycle_worker: Any) -> None:
    batch = leads(400, 8, prefix="drift")
    for lead in batch:
        lead["timeline_urgency"] = 0.97  # everyone is suddenly in a hurry
    stack.score(batch)
    stack.snapshotted(batch)
    report = stack.run("leadscore.drift_check", [MODEL])[MODEL]
    # only the champion's scores count: earlier tests left other versions' scores in the sample
    counts = collections.Counter(json.loads(d)["v"] for d in stack.locks.lrange(drift_key(MODEL), 0, -1))
    assert report["sample"] == counts[report["version"]] < sum(counts.values())
    assert report["drifted"] and "timeline_urgency" in report["drifted_features"]
    assert report["features"]["timeline_urgency"] > report["threshold"] > report["features"]["family_size_mentioned"]
    assert [e["model"] for e in stack.stream("model.drift")] == [MODEL]


def test_drift_check_flags_an_escalation_rate_leaving_its_card_value(stack: Stack, lifecycle_worker: Any) -> None:
    # Given traffic that has turned uncertain: only leads of the kind the champion escalates
    probe = stack.score(leads(300, 9, prefix="probe"))
    uncertain = [lead for lead, r in zip(leads(300, 9, prefix="probe"), probe) if r["escalated"]]
    assert uncertain
    batch = [{**uncertain[i % len(uncertain)], "id": f"unsure-{i}"} for i in range(900)]
    results = stack.score(batch)
    assert all(r["escalated"] for r in results)
    stack.snapshotted(batch)
    # When the drift check runs
    report = stack.run("leadscore.drift_check", [MODEL])[MODEL]
    # Then the realized escalation rate of the sample is far above the card's out-of-fold budget, and flagged
    card = stack.registry.card(MODEL, report["version"])
    rate = report["rates"]["escalated"]
    assert rate["expected"] == round(card["decision"]["escalation"]["budget"], 4)
    assert rate["actual"] > rate["expected"] + report["margin"]
    assert "escalated" in report["drifted_rates"] and report["drifted"]
    assert "escalated" in stack.stream("model.drift")[-1]["detail"]


def test_beat_sends_the_lifecycle_entries_to_the_running_worker(stack: Stack, lifecycle_worker: Any, tmp_path: Path) -> None:
    stack.locks.delete("leadscore:beat:lock")
    env = {**stack.env, "LEADSCORE_RETRAIN_SCHEDULE": "2", "LEADSCORE_DRIFT_SCHEDULE": "2", "LEADSCORE_BEAT_LOCK_TTL_SECONDS": "3"}
    log = tmp_path / "beat.log"
    beat = start_beat(env, log, tmp_path / "schedule")
    try:
        poll(lambda: log.exists() and "leadscore.retrain_all" in log.read_text() and "leadscore.drift_check" in log.read_text(),
             timeout=30, interval=0.2, what="Beat sending the lifecycle entries")
    finally:
        stop_group(beat)
    text = log.read_text()
    assert "Sending due task retrain-weekly (leadscore.retrain_all)" in text
    assert "Sending due task drift-check-daily (leadscore.drift_check)" in text
    worker_log = stack.logs / f"worker-{stack.starts}.log"
    poll(lambda: "leadscore.retrain_all" in worker_log.read_text() and "leadscore.drift_check" in worker_log.read_text(),
         timeout=30, interval=0.2, what="the worker running what Beat sent")
