"""What a served probability turns into: escalated or not, a label band, a percentile.

Training resolves the spec's escalation rule and bands on out-of-fold scores (``resolve``) into
the card's ``decision`` section; a served version reads it back (``Decision.from_card``). What
has no card section (the rules, versions registered before it existed) decides from the spec
alone (``Decision.for_spec``): ``confidence_threshold`` or the service default, and the fixed
cut-offs, exactly as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ml_core import bands as band_math
from ml_core import escalation
from ml_core.spec import ModelSpec

DEFAULT_CONFIDENCE_THRESHOLD = 0.85
"""Matches ``Settings.default_confidence_threshold``; services pass the setting explicitly."""


@dataclass(frozen=True)
class Decision:
    threshold: float
    """Escalated when ``max(p, 1 - p) < threshold``."""
    hot: float
    """Lower cut-offs on the 0-100 score."""
    warm: float
    quantiles: tuple[float, ...] = ()
    """101 out-of-fold score quantiles; empty: results carry no percentile."""

    @classmethod
    def for_spec(cls, spec: ModelSpec, default_threshold: float = DEFAULT_CONFIDENCE_THRESHOLD) -> Decision:
        threshold = spec.confidence_threshold if spec.confidence_threshold is not None else default_threshold
        return cls(threshold=threshold, hot=spec.bands.hot, warm=spec.bands.warm)

    @classmethod
    def from_card(cls, card: dict[str, Any]) -> Decision | None:
        """The card's resolved numbers, or None for a card from before they were recorded."""
        section = card.get("decision")
        if not section:
            return None
        return cls(
            threshold=float(section["escalation"]["threshold"]),
            hot=float(section["bands"]["hot"]),
            warm=float(section["bands"]["warm"]),
            quantiles=tuple(float(q) for q in section.get("quantiles", ())),
        )

    def escalated(self, p: np.ndarray) -> np.ndarray:
        return escalation.confidence(p) < self.threshold

    def labels(self, scores: np.ndarray) -> np.ndarray:
        return band_math.labels(scores, self.hot, self.warm)

    def label(self, score: float) -> str:
        return str(self.labels(np.array([score]))[0])

    def percentiles(self, p: np.ndarray) -> np.ndarray | None:
        return band_math.percentile(p, self.quantiles) if self.quantiles else None


def resolve(spec: ModelSpec, y: np.ndarray, p: np.ndarray, source: str) -> dict[str, Any]:
    """The card's ``decision`` section from calibration rows (out-of-fold labels and scores)."""
    y, p = np.asarray(y), np.asarray(p, dtype=np.float64)
    resolved = escalation.resolve(spec.escalation, y, p)
    section: dict[str, Any] = {
        "source": source,
        "escalation": resolved.to_card(),
        "bands": band_math.resolve(spec.bands, p),
        "quantiles": band_math.quantiles(p),
    }
    section["out_of_fold_check"] = escalation.check_out_of_fold(spec.escalation, y, p)
    served = Decision.from_card({"decision": section})
    assert served is not None
    section["bands"]["conversion"] = evaluate(y, p, served)["bands"]
    return section


def evaluate(y: np.ndarray, p: np.ndarray, decision: Decision) -> dict[str, Any]:
    """What ``decision`` does on labelled rows: escalation rate, fast-path accuracy, band shares and
    the conversion rate inside each band with its lift over the base rate. Pure, so the benchmark
    can call it on any table's out-of-fold (y, p)."""
    y, p = np.asarray(y), np.asarray(p, dtype=np.float64)
    escalated = decision.escalated(p)
    kept = ~escalated
    wrong = kept & ((p >= 0.5) != (y == 1))
    labels = decision.labels(np.round(p * 100.0, 2))
    base = float(np.mean(y == 1)) if len(y) else 0.0
    per_band = {}
    for label in band_math.LABELS:
        inside = labels == label
        rate = float(np.mean(y[inside] == 1)) if inside.any() else None
        per_band[label] = {
            "share": round(float(inside.mean()), 6) if len(y) else 0.0,
            "conversion": None if rate is None else round(rate, 6),
            "lift": None if rate is None or base == 0 else round(rate / base, 4),
        }
    return {
        "rows": len(y),
        "base_rate": round(base, 6),
        "escalation_rate": round(float(escalated.mean()), 6) if len(y) else 0.0,
        "fast_path_accuracy": round(float(1.0 - wrong.sum() / kept.sum()), 6) if kept.any() else None,
        "fast_path_wrong_share": round(float(wrong.mean()), 6) if len(y) else 0.0,
        "bands": per_band,
    }
