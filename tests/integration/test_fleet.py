"""Two "hosts" (two workers with their own models directories, holding only specs, and their own
artifact caches) sharing only PostgreSQL and Redis: both serve what the first host trained; a
promotion and a rollback made from one host's CLI reach both within the reload bound, without
restarts; with PostgreSQL stopped, scoring goes on, lifecycle commands fail naming the store, an
outcome waits and lands when it returns, and the next promotion reaches every host. Outcomes
recorded on both hosts land in the one store, and a retrain on the second host learns from them.
A version whose artifact is damaged in the store (tampered or truncated) is refused by every host,
which keeps serving the old one.

PostgreSQL here is a throwaway cluster of this module's own (``postgres.Cluster``), so stopping it
disturbs no other user of the machine's server.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis
from celery import Celery

from leadscore.stores.event_types import EventType
from leadscore.stores.events import decode, stream_key
from leadscore.worker.snapshots import snapshots_key
from ml_core import rollout, synthetic
from ml_core.dataset import training_set
from ml_core.errors import RegistrationRefusedError
from ml_core.registry import Registry
from ml_core.spec import load_spec
from ml_core.store.schema import blobs
from ml_core.store.state import StateStore
from ml_core.training import TrainedModel, train
from tests.conftest import TEST_REDIS
from tests.factories import leads
from tests.integration.conftest import REPO_MODELS, copy_specs
from tests.integration.postgres import Cluster, throwaway_cluster
from tests.integration.workers import closing_client_app, running_worker, worker_env
from tests.waits import poll

pytestmark = pytest.mark.slow
MODEL = "lead_scorer"
RELOAD_SECONDS = 0.3
BOUND = RELOAD_SECONDS + 10  # the reload bound, plus a loaded machine's slack
OUTAGE_LOGGED = "serving what is loaded until it answers"  # ml_core/pool.py, once per child and outage
URLS = {"broker_url": f"{TEST_REDIS}/5", "result_backend": f"{TEST_REDIS}/6", "cache_url": f"{TEST_REDIS}/4"}
HOSTS = ("a", "b")


class Fleet:
    def __init__(self, root: Path, cluster: Cluster, app: Celery, envs: dict[str, dict[str, str]]) -> None:
        self.root, self.cluster, self.app, self.envs = root, cluster, app, envs
        self.registry = Registry(root / "host-a" / "models", StateStore(cluster.url))

    def served(self, host: str, n: int = 4) -> set[str]:
        pending = [self.app.send_task("leadscore.score_lead", args=[lead], queue=f"scoring_{host}") for lead in leads(n, 3, prefix=host)]
        results = [p.get(timeout=20) for p in pending]
        assert all(r["served_by"] == "onnx" for r in results), results
        return {r["model_version"] for r in results}

    def everywhere(self, version: str) -> None:
        poll(lambda: all(self.served(host) == {version} for host in HOSTS), timeout=BOUND, what=f"every host serving {version}")

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = [str(Path(sys.executable).parent / "leadscore"), *args]
        return subprocess.run(command, env=self.envs["a"], capture_output=True, text=True, timeout=120)


def synthetic_model(rows: int, seed: int) -> TrainedModel:
    spec = load_spec(REPO_MODELS, MODEL)
    return train(spec, training_set(spec, synthetic.generate(MODEL, rows, seed), f"synthetic(rows={rows}, seed={seed})"), seed=seed, folds=3, repeats=1)


@pytest.fixture(scope="module")
def fleet(redis_available: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    root = tmp_path_factory.mktemp("fleet")
    for url in URLS.values():
        redis.Redis.from_url(url).flushdb()
    with throwaway_cluster() as cluster:
        envs = {host: worker_env(models_dir=str(copy_specs(root / f"host-{host}" / "models")), data_dir=str(root / f"host-{host}" / "data"),
                                 database_url=cluster.url, scoring_queue=f"scoring_{host}", training_queue=f"training_{host}",
                                 reload_check_seconds=str(RELOAD_SECONDS), breaker_reset_seconds="1", retrain_base_rows="1500",
                                 retrain_folds="2", retrain_champion_tolerance="1", **URLS)
                for host in HOSTS}
        upgraded = subprocess.run([str(Path(sys.executable).parent / "leadscore"), "db", "upgrade"], env=envs["a"],
                                  capture_output=True, text=True, timeout=120)
        assert upgraded.returncode == 0, upgraded.stderr
        # Given v1 trained on host a (registered in PostgreSQL, cached in host a's models directory only)
        trained = synthetic_model(1500, seed=3)
        with closing_client_app(envs["a"]) as app:
            fleet = Fleet(root, cluster, app, envs)
            assert fleet.registry.register(trained) == "v1" and fleet.registry.register(trained, champion=False) == "v2"
            with running_worker(envs["a"], root / "host-a.log", queues="scoring_a,training_a", concurrency=1), \
                    running_worker(envs["b"], root / "host-b.log", queues="scoring_b,training_b", concurrency=1):
                yield fleet
            fleet.registry.store.close()


def test_both_hosts_serve_what_one_trained_and_follow_promotion_and_rollback(fleet: Fleet) -> None:
    # Then both hosts serve v1, host b from the artifact it fetched and verified
    fleet.everywhere("v1")
    assert (fleet.root / "host-b" / "models" / MODEL / "v1" / "model.onnx").is_file()
    assert not (fleet.root / "host-b" / "models" / MODEL / "v2").exists()
    # When v2 becomes challenger and is promoted from host a's CLI
    rollout.set_challenger(fleet.registry, MODEL, "v2")
    promoted = fleet.cli("promote", MODEL)
    assert promoted.returncode == 0, promoted.stderr
    # Then both hosts serve it within the bound, no restart; and rollback likewise
    fleet.everywhere("v2")
    rolled = fleet.cli("rollback", MODEL)
    assert rolled.returncode == 0, rolled.stderr
    fleet.everywhere("v1")
    events = [e["event"] for e in rollout.history(fleet.registry, MODEL)]
    assert events[-3:] == ["challenger_set", "promoted", "rolled_back"]


def test_outcomes_recorded_on_both_hosts_land_in_one_store_and_a_retrain_on_the_second_learns_from_them(fleet: Fleet) -> None:
    # Given leads scored on each host (their features snapshotted in the shared Redis)
    scored = {host: leads(15, 9, prefix=f"out-{host}") for host in HOSTS}
    for host, batch in scored.items():
        for pending in [fleet.app.send_task("leadscore.score_lead", args=[lead], queue=f"scoring_{host}") for lead in batch]:
            pending.get(timeout=20)
    locks = redis.Redis.from_url(fleet.envs["a"]["LEADSCORE_LOCK_URL"])
    poll(lambda: all(locks.exists(snapshots_key(MODEL, lead["id"])) for batch in scored.values() for lead in batch), what="every snapshot")
    # When their outcomes are recorded through the training workers of both hosts
    truth = synthetic.generate(MODEL, 15, 9)["converted"].tolist()
    now = datetime.now(UTC).isoformat()
    recorded = [fleet.app.send_task("leadscore.record_outcome", args=[lead["id"], bool(y), now], queue=f"training_{host}").get(timeout=30)
                for host, batch in scored.items() for lead, y in zip(batch, truth)]
    assert all(r["with_features"] for r in recorded)
    # Then every one is in the store, and a retrain on the second host trains on all of them
    status = fleet.app.send_task("leadscore.outcome_status", args=[MODEL], queue="training_a").get(timeout=30)
    assert (status["outcomes"], status["with_features"]) == (30, 30)
    try:
        result = fleet.app.send_task("leadscore.retrain", args=[MODEL], queue="training_b").get(timeout=240)
        composition = result["training_set"]
    except RegistrationRefusedError:  # a gate may refuse a model of 1,530 rows: what it trained on is in the history
        composition = [e for e in rollout.history(fleet.registry, MODEL) if e["event"] == "retrain_refused"][-1]["training_set"]
    assert composition["outcomes"] == 30 and composition["base"] == 1500


def test_a_store_outage_stops_no_score_fails_lifecycle_clearly_and_keeps_outcomes(fleet: Fleet) -> None:
    fleet.everywhere("v1")
    scored = leads(1, 5, prefix="outage")[0]
    assert fleet.served("a") == {"v1"}
    fleet.app.send_task("leadscore.score_lead", args=[scored], queue="scoring_a").get(timeout=20)
    # When PostgreSQL stops under scoring traffic
    fleet.cluster.stop()
    try:
        # Then no score fails: every host serves what it has loaded, scoring on until each has
        # looked at the store (at most every reload_check_seconds) and found it down
        def outage_seen() -> bool:
            assert fleet.served("a", 10) == {"v1"} and fleet.served("b", 10) == {"v1"}
            return all(OUTAGE_LOGGED in (fleet.root / f"host-{host}.log").read_text() for host in HOSTS)

        poll(outage_seen, timeout=BOUND, interval=RELOAD_SECONDS, what="every host noticing the outage")
        # And lifecycle commands fail with an error naming the store, never a traceback
        for args in (("promote", MODEL), ("history", MODEL)):
            failed = fleet.cli(*args)
            assert failed.returncode != 0 and "state store postgresql+psycopg://postgres@127.0.0.1" in failed.stderr, failed.stderr
            assert "Traceback" not in failed.stderr
        # And an outcome recorded now waits (task retries with backoff) instead of being lost
        pending = fleet.app.send_task("leadscore.record_outcome", args=[scored["id"], True, datetime.now(UTC).isoformat()],
                                      queue="training_b")
    finally:
        fleet.cluster.start()
    recorded = pending.get(timeout=90)
    assert recorded["lead_id"] == scored["id"] and recorded["with_features"] is True
    status = fleet.app.send_task("leadscore.outcome_status", args=[MODEL, scored["id"]], queue="training_a").get(timeout=20)
    assert status["lead"]["outcome"] == 1 and status["lead"]["features"]
    # And once it is back, a promotion reaches every host
    rollout.set_challenger(fleet.registry, MODEL, "v2")
    assert fleet.cli("promote", MODEL).returncode == 0
    fleet.everywhere("v2")
    # The outage was logged once per worker child, not once per task
    for host in HOSTS:
        assert (fleet.root / f"host-{host}.log").read_text().count(OUTAGE_LOGGED) == 1
    assert os.environ.get("LEADSCORE_DATABASE_URL") is None  # the test never pointed this process at the cluster


@pytest.mark.parametrize("damage", ["tampered", "truncated"])
def test_a_damaged_artifact_in_the_store_is_refused_by_every_host_and_the_old_version_keeps_serving(fleet: Fleet, damage: str) -> None:
    old = fleet.registry.champion(MODEL)
    fleet.everywhere(old)
    children = {host: fleet.app.send_task("leadscore.ping", queue=f"scoring_{host}").get(timeout=20)["pid"] for host in HOSTS}
    # Given a version registered from a third host (so neither serving host has it cached) whose
    # ONNX file is then damaged in PostgreSQL
    trainer = Registry(copy_specs(fleet.root / f"trainer-{damage}" / "models"), fleet.registry.store)
    # a model of its own (blobs are shared by content); 1,500 rows can fall short of the quality gate
    version = trainer.register(synthetic_model(3000, seed=21 if damage == "tampered" else 22), champion=False)
    sha = trainer.card(MODEL, version)["files"]["model.onnx"]
    blob = fleet.registry.store.blob(sha)
    assert blob is not None
    bad = blob[:-1] + bytes([blob[-1] ^ 1]) if damage == "tampered" else blob[: len(blob) // 2]
    with fleet.registry.store.writing() as conn:
        conn.execute(blobs.update().where(blobs.c.sha256 == sha).values(data=bad))
    # When the champion pointer is forced onto it (past rollout's own checks, as a bug or an intruder would)
    fleet.registry.store.set_champion(MODEL, version)
    events = redis.Redis.from_url(URLS["cache_url"])
    try:
        # Then every host refuses the download and keeps serving the old version, without a failed score
        def refused_everywhere() -> bool:
            assert fleet.served("a") == {old} and fleet.served("b") == {old}
            failed = [decode(i, f)["detail"] for i, f in events.xrange(stream_key(EventType.MODEL_RELOAD_FAILED))
                      if f[b"version"].decode() == version]
            return all(any(f"in pid {pid}:" in d and "fetched from the store fails its checksum" in d for d in failed)
                       for pid in children.values())

        poll(refused_everywhere, timeout=BOUND, interval=RELOAD_SECONDS, what=f"both hosts refusing the {damage} {version}")
    finally:
        fleet.registry.store.set_champion(MODEL, old)
        events.close()
    # And neither host cached the damaged file
    for host in HOSTS:
        assert not (fleet.root / f"host-{host}" / "models" / MODEL / version / "model.onnx").exists()
