"""Population stability index and the drift check (no services)."""

from __future__ import annotations

import numpy as np

from ml_core import drift, synthetic
from ml_core.dataset import TrainingSet, training_set
from ml_core.spec import ModelSpec


def test_psi_is_zero_for_the_same_shares_and_grows_with_the_shift() -> None:
    assert drift.psi([0.5, 0.5], [0.5, 0.5]) == 0.0
    assert 0 < drift.psi([0.5, 0.5], [0.45, 0.55]) < drift.psi([0.5, 0.5], [0.2, 0.8])


def test_same_traffic_is_stable_and_a_moved_feature_is_flagged(spec: ModelSpec, train_set: TrainingSet) -> None:
    reference = drift.profile(spec, train_set.X, np.linspace(0, 1, 500))
    fresh = training_set(spec, synthetic.generate("lead_scorer", 3000, seed=99), "fresh").X
    stable = drift.check(spec, reference, fresh, np.linspace(0, 1, 500), threshold=0.2)
    assert not stable["drifted"] and max(stable["features"].values()) < 0.1

    moved = fresh.copy()
    moved[:, spec.columns.index("timeline_urgency")] = 0.97
    flagged = drift.check(spec, reference, moved, np.full(500, 0.9), threshold=0.2)
    assert flagged["drifted_features"] == ["timeline_urgency"]
    assert flagged["score_drifted"] and flagged["score"] > 0.2
