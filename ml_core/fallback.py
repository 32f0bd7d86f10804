"""The rule-based model of a spec: served when the trained model is missing or broken."""

from __future__ import annotations

import copy

import numpy as np

from ml_core.spec import ModelSpec


class RuleScorer:
    served_by = "fallback"
    version = "rules"

    def __init__(self, spec: ModelSpec, reason: str) -> None:
        self.name, self.reason = spec.name, reason
        weights: list[float] = []
        for feature in spec.features:
            w = spec.fallback.weights.get(feature.name, 0.0)
            if feature.kind in ("categorical", "tags"):
                table = w if isinstance(w, dict) else {}
                weights.extend(float(table.get(c, 0.0)) for c in feature.categories)
            else:
                weights.append(float(w))
        self._weights = np.asarray(weights)
        self._intercept = spec.fallback.intercept

    def because(self, reason: str) -> RuleScorer:
        """The same rules, saying why they serve."""
        if reason == self.reason:
            return self
        twin = copy.copy(self)
        twin.reason = reason
        return twin

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        logit = self._intercept + X.astype(np.float64) @ self._weights
        return 1.0 / (1.0 + np.exp(-logit))
