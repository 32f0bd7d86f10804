"""Escalation: conformal thresholds from a budget or a guarantee, the legacy threshold served as
before, and results decided by a version card's numbers."""

from __future__ import annotations

import math
import tomllib

import numpy as np
import pytest

from ml_core import escalation
from ml_core.decision import Decision, resolve
from ml_core.scoring import score_batch, score_one_encoded
from ml_core.spec import EscalationRule, ModelSpec, parse_spec

from .helpers import SPEC_FILE, valid_lead


class FixedScorer:
    """Serves the given probabilities in order: the scoring seam, without a model."""

    name, version, served_by, reason = "lead_scorer", "v1", "onnx", ""

    def __init__(self, probabilities: list[float], decision: Decision | None = None) -> None:
        self.p = np.asarray(probabilities)
        self.decision = decision

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return self.p[: len(X)]

    def route(self, X: np.ndarray) -> tuple[np.ndarray, FixedScorer]:
        return self.predict_proba(X), self


@pytest.fixture(scope="module")
def legacy_spec() -> ModelSpec:
    """The lead_scorer spec as it was before budgets and shares: a fixed threshold and cut-offs."""
    raw = tomllib.loads(SPEC_FILE.read_text())
    del raw["escalation_budget"], raw["bands"]["hot_share"], raw["bands"]["warm_share"]
    return parse_spec("lead_scorer", raw | {"confidence_threshold": 0.85})


def calibrated(n: int, base_rate: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from their own (calibrated) probabilities: exchangeable calibration data."""
    rng = np.random.default_rng(seed)
    p = rng.beta(4.0 * base_rate / (1 - base_rate), 4.0, size=n)  # mean base_rate
    return (rng.random(n) < p).astype(int), p


# ---------------------------------------------------------------- today's fixed threshold


def test_escalated_when_confidence_is_below_the_spec_threshold(legacy_spec: ModelSpec) -> None:
    assert legacy_spec.confidence_threshold == 0.85
    probabilities = [0.5, 0.14, 0.16, 0.849, 0.85, 0.97]  # 0.85: at the threshold is not below it
    results = score_batch(legacy_spec, FixedScorer(probabilities), [valid_lead(f"l{i}") for i in range(6)])
    assert [r["escalated"] for r in results] == [True, False, True, True, False, False]
    assert [r["confidence"] for r in results] == [0.5, 0.86, 0.84, 0.849, 0.85, 0.97]
    assert [r["label"] for r in results] == ["warm", "cold", "cold", "hot", "hot", "hot"]
    assert all("percentile" not in r for r in results)


def test_a_legacy_card_serves_the_spec_threshold_exactly_as_before(legacy_spec: ModelSpec) -> None:
    # a version trained with confidence_threshold = 0.85 records that very threshold in its card
    y, p = calibrated(3000, 0.2, seed=1)
    card = {"decision": resolve(legacy_spec, y, p, "test")}
    assert card["decision"]["escalation"]["threshold"] == 0.85
    assert (card["decision"]["bands"]["hot"], card["decision"]["bands"]["warm"]) == (60.0, 30.0)
    leads = [valid_lead(f"l{i}") for i in range(6)]
    probabilities = [0.5, 0.14, 0.16, 0.849, 0.85, 0.97]
    by_card = score_batch(legacy_spec, FixedScorer(probabilities, Decision.from_card(card)), leads)
    by_spec = score_batch(legacy_spec, FixedScorer(probabilities), leads)
    decided = ("escalated", "label", "confidence", "score")
    assert [{k: r[k] for k in decided} for r in by_card] == [{k: r[k] for k in decided} for r in by_spec]


def test_a_spec_without_threshold_and_no_card_uses_the_default(spec: ModelSpec) -> None:
    # the rules and versions registered before cards held a decision: the service default
    assert spec.confidence_threshold is None
    lead = valid_lead()
    assert score_batch(spec, FixedScorer([0.8]), [lead], default_confidence_threshold=0.75)[0]["escalated"] is False
    assert score_batch(spec, FixedScorer([0.8]), [lead], default_confidence_threshold=0.9)[0]["escalated"] is True


def test_score_one_encoded_returns_the_row_the_cache_keys_on(spec: ModelSpec) -> None:
    result, row = score_one_encoded(spec, FixedScorer([0.9]), valid_lead("lead-7"))
    assert result["lead_id"] == "lead-7" and result["escalated"] is False
    assert row.dtype == np.float32 and row.shape == (len(spec.columns),)
    assert row[spec.columns.index("timeline_urgency")] == np.float32(0.25)


# ---------------------------------------------------------------- the card decides


def test_results_follow_the_card_threshold_cut_offs_and_percentiles(spec: ModelSpec) -> None:
    decision = Decision(threshold=0.7, hot=40.0, warm=20.0, quantiles=tuple(np.linspace(0.0, 1.0, 101)))
    probabilities = [0.5, 0.35, 0.29, 0.45, 0.1, 0.75]  # confidence 0.5, 0.65, 0.71, 0.55, 0.9, 0.75
    results = score_batch(spec, FixedScorer(probabilities, decision), [valid_lead(f"l{i}") for i in range(6)])
    assert [r["escalated"] for r in results] == [True, True, False, True, False, False]
    assert [r["label"] for r in results] == ["hot", "warm", "warm", "hot", "cold", "hot"]
    assert [r["percentile"] for r in results] == [50.0, 35.0, 29.0, 45.0, 10.0, 75.0]


# ---------------------------------------------------------------- conformal thresholds


def test_a_budget_escalates_its_share_of_the_calibration_rows() -> None:
    y, p = calibrated(4000, 0.2, seed=2)
    for budget in (0.1, 0.25, 0.4):
        e = escalation.resolve(EscalationRule("budget", budget), y, p)
        assert e.budget == pytest.approx(budget, abs=1 / 4000)
        assert np.mean(escalation.confidence(p) < e.threshold) == pytest.approx(budget, abs=1 / 4000)


@pytest.mark.parametrize("base_rate", [0.05, 0.2, 0.5])
@pytest.mark.parametrize("alpha", [0.03, 0.1, 0.2])
def test_the_guarantee_holds_on_fresh_leads(base_rate: float, alpha: float) -> None:
    # Given a threshold resolved for alpha on 2,000 calibration rows
    y, p = calibrated(2000, base_rate, seed=3)
    t = escalation.resolve(EscalationRule("alpha", alpha), y, p).threshold
    # When 50,000 fresh leads of the same distribution are decided by it
    y_new, p_new = calibrated(50_000, base_rate, seed=4)
    kept = escalation.confidence(p_new) >= t
    wrong = np.mean(kept & ((p_new >= 0.5) != (y_new == 1)))
    # Then at most alpha of them are kept by the fast path and wrong (sampling tolerance of the
    # 2,000 calibration rows: 3 standard errors), and not far below it either when anything escalates
    tolerance = 3 * math.sqrt(alpha * (1 - alpha) / 2000)
    assert wrong <= alpha + tolerance
    if np.mean(~kept) > 0:
        assert wrong >= alpha - tolerance


def test_budget_and_guarantee_are_two_views_of_one_threshold() -> None:
    y, p = calibrated(5000, 0.2, seed=5)
    by_budget = escalation.resolve(EscalationRule("budget", 0.25), y, p)
    by_alpha = escalation.resolve(EscalationRule("alpha", by_budget.alpha), y, p)
    assert by_alpha.budget == pytest.approx(0.25, abs=0.005)
    assert by_alpha.alpha <= by_budget.alpha
    assert by_budget.fast_path_accuracy >= by_budget.fast_path_accuracy_bound - 1e-9  # measured on the same rows


def test_a_threshold_records_its_budget_and_certified_alpha() -> None:
    y, p = calibrated(3000, 0.2, seed=6)
    e = escalation.resolve(EscalationRule("threshold", 0.85), y, p)
    assert e.threshold == 0.85
    assert e.budget == pytest.approx(np.mean(np.maximum(p, 1 - p) < 0.85), abs=1e-6)
    s = 1 - np.where(y == 1, p, 1 - p)
    assert e.alpha == pytest.approx((np.sum(s >= 0.85) + 1) / 3001, abs=1e-6)


def test_an_alpha_too_small_for_the_rows_escalates_everyone() -> None:
    y, p = calibrated(50, 0.2, seed=7)
    e = escalation.resolve(EscalationRule("alpha", 0.001), y, p)
    assert e.budget == 1.0 and e.fast_path_accuracy is None


def test_an_alpha_above_the_error_rate_escalates_nobody() -> None:
    y, p = calibrated(3000, 0.05, seed=8)
    e = escalation.resolve(EscalationRule("alpha", 0.3), y, p)
    assert e.budget == 0.0 and e.threshold < 0.5


def test_the_out_of_fold_check_applies_the_rule_to_rows_it_was_not_resolved_on() -> None:
    y, p = calibrated(5000, 0.2, seed=9)
    check = escalation.check_out_of_fold(EscalationRule("budget", 0.25), y, p)
    assert check["escalated"] == pytest.approx(0.25, abs=0.01)
    alpha = escalation.resolve(EscalationRule("alpha", 0.08), y, p)
    assert escalation.check_out_of_fold(EscalationRule("alpha", 0.08), y, p)["fast_path_wrong"] <= 0.08 + 0.01
    assert alpha.alpha <= 0.08


def test_the_curve_trades_escalations_for_a_tighter_guarantee() -> None:
    y, p = calibrated(4000, 0.2, seed=10)
    points = escalation.curve(y, p)
    budgets, alphas = [c["budget"] for c in points], [c["alpha"] for c in points]
    assert budgets == sorted(budgets) and alphas == sorted(alphas, reverse=True)
    assert alphas[0] > alphas[-1]
