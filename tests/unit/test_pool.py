from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from ml_core.context.phrases import resolve
from ml_core.errors import ModelNotFoundError
from ml_core.fallback import RuleScorer
from ml_core.onnx_model import OnnxScorer
from ml_core.pool import ModelPool
from ml_core.registry import ONNX_FILE
from tests.stores import fix_up

from .helpers import MODEL


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def test_serves_onnx_when_a_champion_exists(registered, clock):
    pool = ModelPool(registered, clock=clock)

    served = pool.get(MODEL)

    assert isinstance(served.scorer.primary, OnnxScorer)
    assert (served.scorer.served_by, served.scorer.version, served.scorer.reason) == ("onnx", "v1", "")
    assert served.spec == registered.spec(MODEL)
    assert pool.get(MODEL) is served
    assert pool.loaded() == {MODEL: {"version": "v1", "served_by": "onnx", "breaker": "closed", "reason": ""}}


def test_serves_rules_when_there_is_no_champion(empty_registry, clock, caplog):
    with caplog.at_level(logging.ERROR, logger="ml_core.pool"):
        served = ModelPool(empty_registry, clock=clock).get(MODEL)

    assert isinstance(served.scorer.serving, RuleScorer)
    assert served.scorer.served_by == "fallback"
    assert served.scorer.breaker.state == "open"
    assert "no champion" in served.scorer.reason
    assert any("fallback" in record.getMessage() for record in caplog.records)


def test_serves_rules_when_the_artifact_is_tampered(registered, clock):
    path = registered.root / MODEL / "v1" / ONNX_FILE
    path.write_bytes(path.read_bytes() + b"\0")

    served = ModelPool(registered, clock=clock).get(MODEL)

    assert served.scorer.served_by == "fallback"
    assert ONNX_FILE in served.scorer.reason and "checksum" in served.scorer.reason


def test_serves_rules_when_a_checksummed_artifact_is_not_onnx(registered, clock, caplog):
    # The checksum proves the bytes are the registered ones, not that ONNX Runtime can load them.
    fix_up(registered, "v1", ONNX_FILE, b"this is not an onnx model")

    with caplog.at_level(logging.CRITICAL, logger="ml_core.pool"):
        served = ModelPool(registered, clock=clock).get(MODEL)

    assert served.scorer.served_by == "fallback"
    assert "failed to load" in served.scorer.reason


def test_retries_loading_once_the_breaker_resets(empty_registry, trained, clock):
    pool = ModelPool(empty_registry, reset_after_seconds=30, clock=clock)
    served = pool.get(MODEL)
    X = np.zeros((1, len(served.spec.columns)), dtype=np.float32)
    assert served.scorer.route(X)[1].served_by == "fallback"

    # Given a champion appears after the rules took over
    empty_registry.register(trained)

    # Then the rules keep serving until the breaker lets a trial through, which loads the model
    clock.now += 29.9
    assert served.scorer.route(X)[1].served_by == "fallback"
    clock.now += 0.1
    _, used = served.scorer.route(X)
    assert (used.served_by, used.version) == ("onnx", "v1")
    assert served.scorer.breaker.state == "closed"
    assert pool.get(MODEL) is served


def test_a_loaded_model_is_not_reloaded_while_its_pointers_stay_the_same(registered, trained, clock):
    pool = ModelPool(registered, clock=clock)
    served = pool.get(MODEL)
    registered.register(trained, champion=False)
    clock.now += 10_000
    assert pool.get(MODEL) is served and served.scorer.version == "v1"


def test_rules_keep_serving_while_the_model_stays_missing(empty_registry, clock):
    served = ModelPool(empty_registry, reset_after_seconds=5, clock=clock).get(MODEL)
    X = np.zeros((1, len(served.spec.columns)), dtype=np.float32)
    clock.now += 5
    _, used = served.scorer.route(X)  # the trial reload fails again
    assert used.served_by == "fallback" and "no champion" in used.reason
    assert served.scorer.breaker.state == "open"


def test_unknown_model(registered, clock):
    pool = ModelPool(registered, clock=clock)
    with pytest.raises(ModelNotFoundError) as info:
        pool.get("no_such_model")
    assert info.value.model == "no_such_model"
    assert pool.loaded() == {}


def test_a_phrase_file_changed_since_training_is_logged_at_load(registered, clock, caplog):
    with caplog.at_level(logging.WARNING, logger="ml_core.pool"):
        ModelPool(registered, clock=clock).get(MODEL)
    assert not [r for r in caplog.records if "retrain it" in r.getMessage()]
    # a team puts its own copy of the phrase list beside the spec after the champion was trained
    shipped = Path(resolve(None, "en.toml")).read_text()
    (registered.root / MODEL / "en.toml").write_text(shipped + "\n# our market's phrases\n")
    with caplog.at_level(logging.WARNING, logger="ml_core.pool"):
        served = ModelPool(registered, clock=clock).get(MODEL)
    assert served.scorer.served_by == "onnx"  # same columns: it still serves, but says so
    (warning,) = [r.getMessage() for r in caplog.records if "retrain it" in r.getMessage()]
    assert "version v1 was trained on features derived by context-1+en.toml:" in warning
