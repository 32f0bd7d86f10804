"""Ranking metrics on examples small enough to check by hand, and the selection rule on made-up folds."""

from __future__ import annotations

import numpy as np
import pytest

from ml_core.ranking import METRICS, metric_value, ranking_metrics, top_capture
from ml_core.selection import choose, paired_se

# ten leads, three positives; ranked by score the positives sit at ranks 1, 4 and 9
Y = np.array([1, 0, 0, 1, 0, 0, 0, 0, 1, 0])
P = np.linspace(0.95, 0.05, 10)


def test_top_capture_and_lift_by_hand():
    # top 10% = the first lead (a positive): 1 of 3 positives; top 20% = two leads, still 1 of 3
    assert top_capture(Y, P, 0.10) == pytest.approx(1 / 3)
    assert top_capture(Y, P, 0.20) == pytest.approx(1 / 3)
    assert metric_value("top10_lift", Y, P) == pytest.approx((1 / 3) / 0.10)
    assert metric_value("top20_lift", Y, P) == pytest.approx((1 / 3) / 0.20)
    # reversing the ranking puts the positive at rank 9 into the top 20%
    assert metric_value("top20_capture", Y, P[::-1]) == pytest.approx(1 / 3)
    assert metric_value("top10_capture", Y, P[::-1]) == 0.0


def test_top_share_rounds_up_to_whole_leads():
    # 15 leads: the top 10% is ceil(1.5) = 2 leads, the top 20% exactly 3
    y = np.array([0, 1, 1] + [0] * 12)
    p = np.linspace(1, 0, 15)
    assert top_capture(y, p, 0.10) == 0.5 and top_capture(y, p, 0.20) == 1.0


def test_auc_and_average_precision_by_hand():
    # AUC: of the 3 x 7 positive-negative pairs, the positive ranks higher in 7 + 5 + 1 = 13
    assert metric_value("roc_auc", Y, P) == pytest.approx(13 / 21)
    # AP: precision at each positive's rank (1/1, 2/4, 3/9), averaged
    assert metric_value("average_precision", Y, P) == pytest.approx((1 + 2 / 4 + 3 / 9) / 3)


def test_every_metric_is_computed_and_unknown_ones_are_refused():
    numbers = ranking_metrics(Y, P)
    assert set(numbers) == {*METRICS[:6], "log_loss", "brier"}
    assert numbers["brier"] == pytest.approx(float(np.mean((P - Y) ** 2)), abs=1e-5)
    with pytest.raises(ValueError, match="unknown metric 'accuracy'"):
        metric_value("accuracy", Y, P)


def test_one_se_rule_on_made_up_folds():
    order = ("logistic_regression", "gradient_boosting", "blend")
    base = np.array([0.70, 0.74, 0.72, 0.69, 0.75, 0.71])
    noisy = base + np.array([0.03, -0.02, 0.02, -0.01, 0.01, -0.02])  # +0.0017 on average, spread 0.02
    steady = base + 0.02  # +0.02 on every fold
    kept = choose({"logistic_regression": base, "blend": noisy}, order, folds=3, metric="roc_auc")
    assert kept.family == "logistic_regression" and "within one standard error" in kept.reason
    won = choose({"logistic_regression": base, "blend": steady}, order, folds=3, metric="roc_auc")
    assert won.family == "blend" and won.comparisons[0]["se"] == pytest.approx(0.0, abs=1e-12)
    # the standard error is corrected for overlapping training sets: larger than std / sqrt(n)
    d = noisy - base
    assert paired_se(d, folds=3) == pytest.approx(np.std(d, ddof=1) * np.sqrt(1 / 6 + 1 / 2))
