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


def test_a_jump_in_a_features_share_of_blanks_is_drift() -> None:
    from ml_core.dataset import training_set
    from ml_core.spec import parse_spec
    from tests.blank_tables import BLANK_SPEC_TOML, blank_table

    import tomllib

    spec = parse_spec("blanks", tomllib.loads(BLANK_SPEC_TOML))
    X = training_set(spec, blank_table(rows=3000, blank_share=0.1), "t").X
    reference = drift.profile(spec, X, np.linspace(0, 1, 500))
    assert 0.05 < reference["missing"]["income"] < 0.15 and reference["missing"]["age"] == 0.0
    fresh = training_set(spec, blank_table(rows=3000, seed=8, blank_share=0.1), "fresh").X
    stable = drift.check(spec, reference, fresh, np.linspace(0, 1, 500), threshold=0.2, missing_margin=0.1)
    assert not stable["drifted"] and stable["missing_drifted"] == []

    # Given a form change that leaves income blank for a third of new leads (up ~23 points)
    income = spec.columns.index("income")
    broken = fresh.copy()
    broken[:1000, income] = np.nan
    flagged = drift.check(spec, reference, broken, np.linspace(0, 1, 500), threshold=0.2, missing_margin=0.1)
    assert flagged["missing_drifted"] == ["income"] and "income" in flagged["drifted_features"] and flagged["drifted"]
    assert flagged["missing"]["income"]["recent"] > flagged["missing"]["income"]["expected"] + 0.2
    # the values that are there still look like training's: only the blanks moved
    assert flagged["features"]["income"] < 0.1
    # a margin wider than the jump lets it pass
    assert not drift.check(spec, reference, broken, np.linspace(0, 1, 500), threshold=0.2, missing_margin=0.5)["drifted"]
