"""Rules derived from the data at training time, for a spec without ``[fallback]``.

A logistic regression fitted on every training row, on standardized columns with blanks read
as 0 (what ``RuleScorer`` does with a blank), then converted back to raw-scale weights:

    w_raw = w / scale,   intercept_raw = b - sum(w * mean / scale)

so ``RuleScorer`` with these numbers gives that regression's probabilities exactly. They are
stored as plain numbers in the card (``fallback_rules``), in the spec's ``[fallback]`` format,
and serve when the champion cannot (``ml_core.pool``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ml_core.errors import ArtifactIntegrityError, ModelNotFoundError, StoreUnavailableError
from ml_core.registry import Registry
from ml_core.spec import Fallback, ModelSpec

CARD_KEY = "fallback_rules"


def derive(spec: ModelSpec, X: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """The card entry: ``{"intercept", "weights", "source"}`` (weights by feature, tables by category)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    X0 = np.nan_to_num(np.asarray(X, dtype=np.float64), nan=0.0)
    scaler = StandardScaler().fit(X0)
    lr = LogisticRegression(max_iter=1000).fit(scaler.transform(X0), y)
    w = lr.coef_[0] / scaler.scale_
    intercept = float(lr.intercept_[0] - np.sum(w * scaler.mean_))
    weights: dict[str, Any] = {}
    at = 0
    for feature in spec.features:
        width = len(feature.columns)
        if feature.kind in ("categorical", "tags"):
            weights[feature.name] = {c: round(float(v), 8) for c, v in zip(feature.categories, w[at : at + width])}
        else:
            weights[feature.name] = round(float(w[at]), 8)
        at += width
    return {
        "intercept": round(intercept, 8),
        "weights": weights,
        "source": f"logistic regression on all {len(y)} training rows, blanks read as 0, raw-scale weights",
    }


def rules_for(registry: Registry, spec: ModelSpec) -> Fallback | None:
    """The spec's rules, else those in its champion's card; None when there are neither."""
    if spec.fallback is not None:
        return spec.fallback
    try:
        entry = registry.card(spec.name, registry.champion(spec.name)).get(CARD_KEY)
    except (ModelNotFoundError, ArtifactIntegrityError, StoreUnavailableError):
        return None
    if not isinstance(entry, dict):
        return None
    return Fallback(intercept=float(entry.get("intercept", 0.0)), weights=dict(entry.get("weights", {})))
