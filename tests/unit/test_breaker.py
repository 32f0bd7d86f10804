"""The circuit breaker and the guarded scorer, with a model that really fails."""

from __future__ import annotations

import numpy as np
import pytest

from ml_core.breaker import CircuitBreaker, GuardedScorer
from ml_core.fallback import RuleScorer


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class FlakyModel:
    """An ONNX-like scorer whose predictions fail while ``broken`` is set."""

    served_by, version, reason, name = "onnx", "v7", "", "lead_scorer"

    def __init__(self) -> None:
        self.broken = True
        self.calls = 0

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        self.calls += 1
        if self.broken:
            raise RuntimeError("session crashed")
        return np.full(len(X), 0.9)


@pytest.fixture
def guarded(spec):  # type: ignore[no-untyped-def]
    clock, transitions, model = Clock(), [], FlakyModel()
    breaker = CircuitBreaker(
        "lead_scorer", failure_threshold=3, reset_after_seconds=10, clock=clock,
        on_transition=lambda *t: transitions.append(t[1:3]),
    )
    scorer = GuardedScorer(breaker, RuleScorer(spec, ""), load=lambda: model, primary=model)  # type: ignore[arg-type]
    return scorer, model, clock, transitions, np.zeros((2, len(spec.columns)), dtype=np.float32)


def test_repeated_prediction_failures_open_the_breaker_and_rules_serve(guarded):  # type: ignore[no-untyped-def]
    scorer, model, _, transitions, X = guarded
    for _ in range(3):
        p, used = scorer.route(X)
        assert used.served_by == "fallback" and len(p) == 2
    assert scorer.breaker.state == "open" and transitions == [("closed", "open")]
    assert used.reason == "prediction failed: RuntimeError"
    # While open, the broken model is not called at all
    calls = model.calls
    scorer.route(X)
    assert model.calls == calls


def test_breaker_recovers_on_its_own_when_the_model_works_again(guarded):  # type: ignore[no-untyped-def]
    scorer, model, clock, transitions, X = guarded
    for _ in range(3):
        scorer.route(X)
    model.broken = False
    clock.now += 9.9
    assert scorer.route(X)[1].served_by == "fallback"
    clock.now += 0.1
    p, used = scorer.route(X)
    assert used.served_by == "onnx" and np.allclose(p, 0.9)
    assert transitions == [("closed", "open"), ("open", "half_open"), ("half_open", "closed")]
    assert scorer.describe() == {"version": "v7", "served_by": "onnx", "breaker": "closed", "reason": ""}


def test_a_failed_trial_reopens_for_another_period(guarded):  # type: ignore[no-untyped-def]
    scorer, model, clock, transitions, X = guarded
    for _ in range(3):
        scorer.route(X)
    clock.now += 10
    assert scorer.route(X)[1].served_by == "fallback"
    assert transitions[-2:] == [("open", "half_open"), ("half_open", "open")]
    calls = model.calls
    clock.now += 5
    scorer.route(X)
    assert model.calls == calls


def test_failures_below_the_threshold_do_not_open(guarded):  # type: ignore[no-untyped-def]
    scorer, model, _, transitions, X = guarded
    scorer.route(X)
    scorer.route(X)
    model.broken = False
    assert scorer.route(X)[1].served_by == "onnx"
    assert scorer.breaker.failures == 0 and transitions == []
