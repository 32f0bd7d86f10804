"""The state store on real PostgreSQL (and the SQLite default): the schema is versioned and a store
behind it is refused until ``leadscore db upgrade``; two processes promoting at once leave one
winner, one typed error and a consistent history."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ml_core import rollout, synthetic
from ml_core.dataset import training_set
from ml_core.errors import RolloutError, StoreSchemaError
from ml_core.registry import Registry
from ml_core.spec import load_spec
from ml_core.store.migrate import HEAD
from ml_core.store.state import StateStore, embedded_url
from ml_core.training import TrainedModel, train
from tests.integration.conftest import REPO_MODELS, copy_specs
from tests.integration.postgres import fresh_database

MODEL = "lead_scorer"
ROUNDS = 3


@pytest.fixture(scope="module")
def trained() -> TrainedModel:
    spec = load_spec(REPO_MODELS, MODEL)
    frame = synthetic.generate(MODEL, 1500, seed=3)
    return train(spec, training_set(spec, frame, "synthetic(rows=1500, seed=3)"), seed=3, folds=3, repeats=1)


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    with fresh_database() as url:
        yield url


def test_a_store_behind_the_schema_is_refused_until_db_upgrade(tmp_path: Path) -> None:
    with fresh_database() as url:
        # Given an empty PostgreSQL database: every process refuses it, naming the command
        behind = StateStore(url)
        with pytest.raises(StoreSchemaError, match="run `leadscore db upgrade`"):
            behind.versions(MODEL)
        # When the command runs once
        env = {**os.environ, "LEADSCORE_DATABASE_URL": url, "LEADSCORE_MODELS_DIR": str(copy_specs(tmp_path / "models"))}
        cli = [str(Path(sys.executable).parent / "leadscore")]
        upgraded = subprocess.run([*cli, "db", "upgrade"], env=env, capture_output=True, text=True, timeout=120)
        assert upgraded.returncode == 0, upgraded.stderr
        assert f"-> {HEAD}" in upgraded.stdout and "***" not in url
        # Then the store is used, and its status says it is current
        assert behind.versions(MODEL) == []
        behind.close()
        status = subprocess.run([*cli, "db", "status"], env=env, capture_output=True, text=True, timeout=120)
        assert f'"revision": "{HEAD}"' in status.stdout and '"current": true' in status.stdout


def _promote_at_once(url: str, root: Path, barrier: Any, results: Any) -> None:  # runs in a forked process
    registry = Registry(root, StateStore(url))
    try:
        barrier.wait(timeout=60)
        results.put(("promoted", rollout.promote(registry, MODEL)["version"]))
    except RolloutError as exc:
        results.put((type(exc).__name__, str(exc)))
    finally:
        registry.store.close()


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_concurrent_promotions_leave_one_winner_and_one_clear_error(backend: str, postgres: str, trained: TrainedModel,
                                                                    tmp_path: Path) -> None:
    url = postgres if backend == "postgresql" else embedded_url(tmp_path / "data")
    if backend == "postgresql":
        StateStore(url).upgrade()
    root = copy_specs(tmp_path / "models")
    registry = Registry(root, StateStore(url))
    try:
        _race(registry, url, root, trained)
    finally:
        registry.store.close()


def _race(registry: Registry, url: str, root: Path, trained: TrainedModel) -> None:
    first = registry.register(trained)
    second = registry.register(trained, champion=False)
    context = multiprocessing.get_context("fork")
    for round_ in range(ROUNDS):
        # Given a challenger, and two processes (two hosts) that promote it at the same moment
        candidate = second if registry.champion(MODEL) == first else first
        rollout.set_challenger(registry, MODEL, candidate)
        barrier, results = context.Barrier(2), context.Queue()
        racers = [context.Process(target=_promote_at_once, args=(url, root, barrier, results)) for _ in range(2)]
        for racer in racers:
            racer.start()
        outcomes = sorted(results.get(timeout=120) for _ in racers)
        for racer in racers:
            racer.join(timeout=30)
        # Then exactly one promoted it, the other got a typed error saying why, and nothing else changed
        assert [o[0] for o in outcomes].count("promoted") == 1, outcomes
        loser = next(o for o in outcomes if o[0] != "promoted")
        assert loser[0] in ("ConcurrentChangeError", "RolloutError") and ("another process" in loser[1] or "no challenger" in loser[1])
        assert registry.champion(MODEL) == candidate and rollout.challenger(registry, MODEL) is None
        promotions = [e for e in rollout.history(registry, MODEL) if e["event"] == "promoted"]
        assert len(promotions) == round_ + 1 and promotions[-1]["version"] == candidate
