"""Training resolves the budget, the guarantee and the bands on out-of-fold scores, and the served
version keeps them on leads it never saw, at base rates of about 5 %, 20 % and 50 %."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest

from ml_core.dataset import training_set
from ml_core.decision import Decision
from ml_core.onnx_model import OnnxScorer
from ml_core.retrain import version_files
from ml_core.scoring import score_batch
from ml_core.spec import ModelSpec, parse_spec
from ml_core.training import fit
from tests.stores import registry_at

WEIGHTS = np.array([1.2, 0.8, -0.6, 0.3])
TRAIN_ROWS, FRESH_ROWS = 6000, 6000


def spec_data(**rule: Any) -> dict[str, Any]:
    return {
        "target": "won",
        "quality_gate": 0.6,
        "bands": {"hot_share": 0.1, "warm_share": 0.3},
        "fallback": {"intercept": 0.0},
        "features": [{"name": f"x{j}", "kind": "numeric", "min": -20, "max": 20} for j in range(len(WEIGHTS))],
        **rule,
    }


def intercept_for(base_rate: float) -> float:
    """The logit intercept giving ``base_rate`` positives, by bisection on a large sample."""
    z = np.random.default_rng(0).standard_normal((200_000, len(WEIGHTS))) @ WEIGHTS
    lo, hi = -10.0, 10.0
    for _ in range(50):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if np.mean(1 / (1 + np.exp(-(mid + z)))) < base_rate else (lo, mid)
    return (lo + hi) / 2


def table(rows: int, base_rate: float, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((rows, len(WEIGHTS)))
    p = 1 / (1 + np.exp(-(intercept_for(base_rate) + X @ WEIGHTS)))
    frame = pd.DataFrame(X, columns=[f"x{j}" for j in range(len(WEIGHTS))])
    frame["won"] = (rng.random(rows) < p).astype(int)
    return frame


def train_and_serve(tmp_path: Any, spec: ModelSpec, base_rate: float) -> tuple[dict[str, Any], OnnxScorer]:
    """The registration path of ``leadscore train`` (one family, to keep the test short), then the
    version loaded as a worker loads it."""
    frame = table(TRAIN_ROWS, base_rate, seed=1)
    trained = fit(spec, training_set(spec, frame, "test"), seed=3, folds=3, families=["logistic_regression"])
    files, extra = version_files(trained, None, {"family": trained.family}, None)
    registry = registry_at(tmp_path)
    (tmp_path / spec.name).mkdir()
    (tmp_path / spec.name / "spec.toml").write_text("")  # the registry only needs the directory here
    version = registry.register(trained, extra_files=files, card_extra=extra)
    card = registry.card(spec.name, version)
    onnx = registry.verified_file(spec.name, version, "model.onnx")
    return card, OnnxScorer(spec.name, version, onnx, Decision.from_card(card))


def fresh_leads(base_rate: float) -> tuple[list[dict[str, Any]], np.ndarray]:
    frame = table(FRESH_ROWS, base_rate, seed=2)
    leads = [{"id": str(i), **{c: float(v) for c, v in row.items() if c != "won"}} for i, row in enumerate(frame.to_dict("records"))]
    return leads, frame["won"].to_numpy()


@pytest.mark.slow
@pytest.mark.parametrize("base_rate", [0.05, 0.2, 0.5])
def test_a_25_percent_budget_and_top_10_percent_hot_hold_on_fresh_leads(tmp_path: Any, base_rate: float) -> None:
    spec = parse_spec("budgeted", spec_data(escalation_budget=0.25))
    card, scorer = train_and_serve(tmp_path, spec, base_rate)
    assert card["decision"]["escalation"]["budget"] == pytest.approx(0.25, abs=0.001)  # out of fold, by construction
    leads, _ = fresh_leads(base_rate)
    results = score_batch(spec, scorer, leads, max_batch_size=None)
    escalated = np.mean([r["escalated"] for r in results])
    hot = np.mean([r["label"] == "hot" for r in results])
    warm = np.mean([r["label"] == "warm" for r in results])
    assert abs(escalated - 0.25) <= 0.03, f"escalated {escalated:.3f} at base rate {base_rate}"
    assert abs(hot - 0.10) <= 0.02, f"hot {hot:.3f} at base rate {base_rate}"
    assert abs(warm - 0.30) <= 0.03, f"warm {warm:.3f} at base rate {base_rate}"
    assert all(0.0 <= r["percentile"] <= 100.0 for r in results)
    assert np.mean([r["percentile"] >= 90.0 for r in results]) == pytest.approx(hot, abs=0.01)


@pytest.mark.slow
@pytest.mark.parametrize("base_rate", [0.05, 0.2, 0.5])
def test_a_stated_guarantee_holds_out_of_fold_and_on_fresh_leads(tmp_path: Any, base_rate: float) -> None:
    alpha = 0.08
    spec = parse_spec("guaranteed", spec_data(escalation_alpha=alpha))
    card, scorer = train_and_serve(tmp_path, spec, base_rate)
    e = card["decision"]["escalation"]
    assert e["rule"] == "alpha" and e["alpha"] <= alpha
    tolerance = 3 * math.sqrt(alpha * (1 - alpha) / e["rows"])  # sampling error of the calibration rows
    assert card["decision"]["out_of_fold_check"]["fast_path_wrong"] <= alpha + tolerance
    leads, won = fresh_leads(base_rate)
    results = score_batch(spec, scorer, leads, max_batch_size=None)
    kept = np.array([not r["escalated"] for r in results])
    called = np.array([r["probability"] >= 0.5 for r in results])
    wrong = np.mean(kept & (called != (won == 1)))
    assert wrong <= alpha + tolerance, f"fast path wrong on {wrong:.3f} of fresh leads at base rate {base_rate}"
    # and the budget it needed is what the card says, give or take sampling
    assert np.mean(~kept) == pytest.approx(e["budget"], abs=0.03)
