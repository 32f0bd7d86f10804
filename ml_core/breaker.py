"""A per-model circuit breaker, and the scorer that serves through it.

    closed     the model serves; consecutive failures are counted
    open       after ``failure_threshold`` failures (or a failed load): the rules serve, the
               model is not touched until ``reset_after_seconds`` have passed
    half_open  one trial call (or reload) goes to the model: success closes the breaker,
               failure opens it again for another ``reset_after_seconds``

So a broken model costs one failed call per reset period instead of one per request, and a
repaired model (a file put right, a new champion) is picked up without a restart.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import numpy as np

from ml_core.decision import Decision
from ml_core.fallback import RuleScorer
from ml_core.onnx_model import OnnxScorer

log = logging.getLogger(__name__)

Transition = Callable[[str, str, str, str], None]
"""``on_transition(model, old_state, new_state, reason)``"""


class CircuitBreaker:
    def __init__(
        self,
        model: str,
        *,
        failure_threshold: int = 5,
        reset_after_seconds: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        on_transition: Transition | None = None,
    ) -> None:
        self.model = model
        self.failure_threshold = failure_threshold
        self.reset_after_seconds = reset_after_seconds
        self.state = "closed"
        self.reason = ""
        self.failures = 0
        self._clock = clock
        self._opened_at = 0.0
        self._on_transition = on_transition
        self._lock = threading.Lock()

    def allow(self) -> bool:
        """May this call go to the model? In half-open state only one trial is let through."""
        with self._lock:
            if self.state == "closed":
                return True
            if self.state == "open" and self._clock() - self._opened_at >= self.reset_after_seconds:
                self._move("half_open", self.reason)
                return True
            return False

    def succeeded(self) -> None:
        with self._lock:
            self.failures = 0
            if self.state != "closed":
                self._move("closed", "")

    def failed(self, reason: str, *, fatal: bool = False) -> None:
        """Count a failure; ``fatal`` (the model cannot load) opens the breaker at once."""
        with self._lock:
            self.failures += 1
            self.reason = reason
            if self.state == "half_open" or fatal or self.failures >= self.failure_threshold:
                self._opened_at = self._clock()
                if self.state != "open":
                    self._move("open", reason)

    def _move(self, state: str, reason: str) -> None:
        old, self.state = self.state, state
        log.warning("circuit breaker of model %s: %s -> %s%s", self.model, old, state, f" ({reason})" if reason else "")
        if self._on_transition is not None:
            try:
                self._on_transition(self.model, old, state, reason)
            except Exception:  # reporting a transition must never break serving
                log.exception("breaker transition hook failed")


class GuardedScorer:
    """Serves the ONNX model while its breaker allows, the spec's rules otherwise."""

    def __init__(
        self,
        breaker: CircuitBreaker,
        fallback: RuleScorer,
        load: Callable[[], OnnxScorer],
        primary: OnnxScorer | None = None,
    ) -> None:
        self.breaker, self.fallback, self.primary = breaker, fallback, primary
        self._load = load

    @property
    def name(self) -> str:
        return self.fallback.name

    @property
    def serving(self) -> OnnxScorer | RuleScorer:
        """What serves right now: the model while its breaker is closed, else the rules."""
        if self.primary is not None and self.breaker.state == "closed":
            return self.primary
        return self.fallback.because(self.breaker.reason)

    @property
    def version(self) -> str:
        return self.serving.version

    @property
    def served_by(self) -> str:
        return self.serving.served_by

    @property
    def reason(self) -> str:
        return self.serving.reason

    @property
    def decision(self) -> Decision | None:
        return self.serving.decision

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return self.route(X)[0]

    def route(self, X: np.ndarray) -> tuple[np.ndarray, OnnxScorer | RuleScorer]:
        """The probabilities, and the scorer that actually produced them."""
        if self.breaker.allow():
            try:
                if self.primary is None:
                    self.primary = self._load()
                p = self.primary.predict_proba(X)
            except Exception as exc:  # any model failure is served by the rules
                loading = self.primary is None
                reason = str(exc) if loading else f"prediction failed: {exc.__class__.__name__}"
                self.breaker.failed(reason, fatal=loading)
            else:
                self.breaker.succeeded()
                return p, self.primary
        return self.fallback.predict_proba(X), self.fallback.because(self.breaker.reason)

    def describe(self) -> dict[str, str]:
        serving = self.serving
        return {"version": serving.version, "served_by": serving.served_by, "breaker": self.breaker.state, "reason": serving.reason}
