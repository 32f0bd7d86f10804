"""Bands by share resolved into cut-offs, percentiles from the card's quantiles, and the pure
evaluation the report and the benchmark read (escalation, fast-path accuracy, lift per band)."""

from __future__ import annotations

import numpy as np
import pytest

from ml_core import bands
from ml_core.decision import Decision, evaluate
from ml_core.spec import Bands


def test_shares_resolve_into_cut_offs_that_split_the_scores_so() -> None:
    p = np.random.default_rng(1).beta(1.0, 4.0, size=10_000)
    section = bands.resolve(Bands(hot=90, warm=60, hot_share=0.1, warm_share=0.3), p)
    assert section["by"] == "share"
    assert section["shares"]["hot"] == pytest.approx(0.10, abs=0.002)
    assert section["shares"]["warm"] == pytest.approx(0.30, abs=0.002)
    assert section["hot"] == pytest.approx(100 * np.quantile(p, 0.9), abs=0.01)


def test_fixed_cut_offs_stay_as_the_spec_gives_them() -> None:
    p = np.random.default_rng(2).beta(1.0, 4.0, size=1000)
    section = bands.resolve(Bands(hot=60, warm=30), p)
    assert (section["by"], section["hot"], section["warm"]) == ("cut_off", 60, 30)
    assert section["shares"]["hot"] == pytest.approx(np.mean(np.round(p * 100, 2) >= 60), abs=1e-6)


def test_percentiles_read_from_101_quantiles() -> None:
    p = np.random.default_rng(3).random(100_001)
    table = bands.quantiles(p)
    assert len(table) == 101
    got = bands.percentile(np.array([0.0, 0.25, 0.5, 0.999, 1.0]), table)
    np.testing.assert_allclose(got, [0.0, 25.0, 50.0, 99.9, 100.0], atol=0.2)


def test_a_plateau_of_equal_scores_gets_its_middle_rank() -> None:
    table = [0.0] * 41 + list(np.linspace(0.1, 1.0, 60))  # 40 % of the scores at exactly 0
    assert bands.percentile(np.array([0.0]), table)[0] == 20.0
    assert bands.percentile(np.array([1.0]), table)[0] == 100.0


def test_evaluate_reports_escalation_fast_path_accuracy_and_lift() -> None:
    y = np.array([1, 1, 0, 0, 1, 0, 0, 0, 0, 0])
    p = np.array([0.95, 0.7, 0.6, 0.45, 0.3, 0.2, 0.1, 0.1, 0.05, 0.02])
    decision = Decision(threshold=0.75, hot=65.0, warm=25.0)
    got = evaluate(y, p, decision)
    # escalated: confidence < 0.75, i.e. 0.25 < p < 0.75: 0.7, 0.6, 0.45, 0.3
    assert got["escalation_rate"] == 0.4
    # kept: 0.95 (called 1, right), 0.2, 0.1, 0.1, 0.05, 0.02 (called 0, all right)
    assert got["fast_path_accuracy"] == 1.0 and got["fast_path_wrong_share"] == 0.0
    assert got["base_rate"] == 0.3
    assert got["bands"]["hot"] == {"share": 0.2, "conversion": 1.0, "lift": pytest.approx(3.3333, abs=1e-4)}
    assert got["bands"]["warm"] == {"share": 0.3, "conversion": pytest.approx(1 / 3, abs=1e-6), "lift": pytest.approx(1.1111, abs=1e-4)}
    assert got["bands"]["cold"]["conversion"] == 0.0
