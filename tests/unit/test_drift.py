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
    import tomllib

    from ml_core.dataset import training_set
    from ml_core.spec import parse_spec
    from tests.blank_tables import BLANK_SPEC_TOML, blank_table

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


def card_decision() -> dict:
    return {
        "escalation": {"threshold": 0.75, "budget": 0.25},
        "bands": {"hot": 40.0, "warm": 20.0, "shares": {"hot": 0.1, "warm": 0.3, "cold": 0.6}},
        "quantiles": [],
    }


def traffic(escalated: float, hot: float, warm: float, n: int = 2000) -> np.ndarray:
    """Scores with the given shares: escalated ones in (0.25, 0.4), hot at 0.8 (confident), warm at 0.22."""
    rng = np.random.default_rng(0)
    k_esc, k_hot = int(escalated * n), int(hot * n)
    k_warm = int(warm * n) - k_esc  # the escalated ones (0.25-0.4) are warm too
    p = np.concatenate([rng.uniform(0.26, 0.39, k_esc), np.full(k_hot, 0.8), np.full(k_warm, 0.22), np.full(n - k_esc - k_hot - k_warm, 0.05)])
    return rng.permutation(p)


def test_rates_on_their_card_values_are_not_drift():
    checked = drift.check_rates(card_decision(), traffic(0.25, 0.1, 0.3), margin=0.05)
    assert checked["drifted_rates"] == []
    assert checked["rates"]["escalated"] == {"expected": 0.25, "actual": 0.25}


def test_an_escalation_rate_leaving_its_card_value_is_drift():
    # Given traffic on which the card's threshold escalates 40 % of leads instead of 25 %
    checked = drift.check_rates(card_decision(), traffic(0.40, 0.1, 0.45), margin=0.05)
    # Then the escalation rate (and the warm share that came with it) is flagged, hot is not
    assert checked["rates"]["escalated"] == {"expected": 0.25, "actual": 0.4}
    assert "escalated" in checked["drifted_rates"] and "hot" not in checked["drifted_rates"]
    # and a margin wider than the move tolerates it
    assert "escalated" not in drift.check_rates(card_decision(), traffic(0.40, 0.1, 0.45), margin=0.2)["drifted_rates"]
