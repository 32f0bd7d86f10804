"""Every result says whether the lead is escalated: confidence max(p, 1 - p) below the threshold."""

from __future__ import annotations

import dataclasses

import numpy as np

from ml_core.scoring import score_batch, score_one_encoded
from ml_core.spec import ModelSpec

from .helpers import valid_lead


class FixedScorer:
    """Serves the given probabilities in order: the scoring seam, without a model."""

    name, version, served_by, reason = "lead_scorer", "v1", "onnx", ""

    def __init__(self, probabilities: list[float]) -> None:
        self.p = np.asarray(probabilities)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return self.p[: len(X)]


def test_escalated_when_confidence_is_below_the_spec_threshold(spec: ModelSpec) -> None:
    assert spec.confidence_threshold == 0.85
    probabilities = [0.5, 0.14, 0.16, 0.849, 0.85, 0.97]  # 0.85: at the threshold is not below it
    results = score_batch(spec, FixedScorer(probabilities), [valid_lead(f"l{i}") for i in range(6)])
    assert [r["escalated"] for r in results] == [True, False, True, True, False, False]
    assert [r["confidence"] for r in results] == [0.5, 0.86, 0.84, 0.849, 0.85, 0.97]


def test_a_spec_without_threshold_uses_the_default(spec: ModelSpec) -> None:
    open_spec = dataclasses.replace(spec, confidence_threshold=None)
    lead = valid_lead()
    assert score_batch(open_spec, FixedScorer([0.8]), [lead], default_confidence_threshold=0.75)[0]["escalated"] is False
    assert score_batch(open_spec, FixedScorer([0.8]), [lead], default_confidence_threshold=0.9)[0]["escalated"] is True


def test_score_one_encoded_returns_the_row_the_cache_keys_on(spec: ModelSpec) -> None:
    result, row = score_one_encoded(spec, FixedScorer([0.9]), valid_lead("lead-7"))
    assert result["lead_id"] == "lead-7" and result["escalated"] is False
    assert row.dtype == np.float32 and row.shape == (len(spec.columns),)
    assert row[spec.columns.index("timeline_urgency")] == np.float32(0.25)
