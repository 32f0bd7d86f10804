"""Hot reload in the pool: pointers checked at most every ``reload_check_seconds`` (fake clock)."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from ml_core import rollout
from ml_core.pool import ModelPool
from ml_core.registry import ONNX_FILE, Registry
from ml_core.training import TrainedModel

from .helpers import MODEL


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def two_versions(registered: Registry, trained: TrainedModel) -> Registry:
    registered.register(trained, champion=False)
    return registered


def test_a_promotion_is_served_after_the_check_and_tasks_in_flight_keep_their_version(two_versions: Registry) -> None:
    clock, changes = Clock(), []
    pool = ModelPool(two_versions, clock=clock, reload_check_seconds=2.0, on_change=lambda *c: changes.append(c))
    in_flight = pool.get(MODEL)
    rollout.set_challenger(two_versions, MODEL, "v2")
    rollout.promote(two_versions, MODEL)

    clock.now += 1.9
    assert pool.get(MODEL) is in_flight  # not checked yet
    clock.now += 0.1
    now_served = pool.get(MODEL)
    X = np.zeros((1, len(now_served.spec.columns)), dtype=np.float32)
    assert now_served.scorer.route(X)[1].version == "v2"
    assert in_flight.scorer.route(X)[1].version == "v1"  # what a task that started before still uses
    assert changes == [(MODEL, "reloaded", "v2", "was v1")]


def test_a_version_that_fails_to_load_keeps_the_old_one_serving_and_alerts(two_versions: Registry, caplog) -> None:
    clock, changes = Clock(), []
    pool = ModelPool(two_versions, clock=clock, reload_check_seconds=1.0, reset_after_seconds=30.0, on_change=lambda *c: changes.append(c))
    served = pool.get(MODEL)
    onnx = two_versions.root / MODEL / "v2" / ONNX_FILE
    onnx.write_bytes(onnx.read_bytes()[:-5])
    two_versions.set_champion(MODEL, "v2")  # a pointer forced onto a damaged version

    with caplog.at_level(logging.CRITICAL, logger="ml_core.pool"):
        clock.now += 1
        assert pool.get(MODEL) is served and served.scorer.version == "v1"
        assert [c[1:3] for c in changes] == [("reload_failed", "v2")] and "checksum" in changes[0][3]
        clock.now += 5  # not retried before reset_after_seconds
        pool.get(MODEL)
        assert len(changes) == 1
        clock.now += 30
        pool.get(MODEL)
        assert len(changes) == 2


def test_a_challenger_in_shadow_or_canary_is_loaded_beside_the_champion(two_versions: Registry) -> None:
    clock = Clock()
    pool = ModelPool(two_versions, clock=clock, reload_check_seconds=1.0)
    assert pool.get(MODEL).challenger is None
    rollout.set_challenger(two_versions, MODEL, "v2", "shadow")
    clock.now += 1
    served = pool.get(MODEL)
    assert served.shadow is not None and served.shadow.version == "v2"
    assert served.for_lead("anyone") is served.scorer
    assert pool.loaded()[MODEL]["challenger"] == "v2 (shadow)"

    rollout.set_mode(two_versions, MODEL, "canary", 50)
    clock.now += 1
    served = pool.get(MODEL)
    state = served.challenger.state
    ids = [f"lead-{i}" for i in range(200)]
    assert all((served.for_lead(i) is served.challenger.scorer) == state.serves(MODEL, i) for i in ids)
    assert served.shadow is None
