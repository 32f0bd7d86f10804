"""The rule-based model of a spec: served when the trained model is missing or broken.

The rules are the spec's ``[fallback]``; a spec without one serves the rules derived from its
champion at training time (``ml_core.derived_rules``, plain numbers in the card), and with
neither (no champion, or an unreadable card) a constant 0.5 that says it knows nothing.
A blank (NaN) contributes 0, as an absent weight does.
"""

from __future__ import annotations

import copy

import numpy as np

from ml_core.decision import Decision
from ml_core.spec import Fallback, ModelSpec


class RuleScorer:
    served_by = "fallback"
    version = "rules"
    decision: Decision | None = None  # the rules are decided by the spec

    def __init__(self, spec: ModelSpec, reason: str, rules: Fallback | None = None) -> None:
        self.name, self.reason = spec.name, reason
        rules = rules or spec.fallback or Fallback(intercept=0.0)
        weights: list[float] = []
        for feature in spec.features:
            w = rules.weights.get(feature.name, 0.0)
            if feature.kind in ("categorical", "tags"):
                table = w if isinstance(w, dict) else {}
                weights.extend(float(table.get(c, 0.0)) for c in feature.categories)
            else:
                weights.append(float(w))
        self._weights = np.asarray(weights)
        self._intercept = rules.intercept

    def because(self, reason: str) -> RuleScorer:
        """The same rules, saying why they serve."""
        if reason == self.reason:
            return self
        twin = copy.copy(self)
        twin.reason = reason
        return twin

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        logit = self._intercept + np.nan_to_num(X.astype(np.float64), nan=0.0) @ self._weights
        p: np.ndarray = 1.0 / (1.0 + np.exp(-logit))
        return p

    def route(self, X: np.ndarray) -> tuple[np.ndarray, RuleScorer]:
        return self.predict_proba(X), self
