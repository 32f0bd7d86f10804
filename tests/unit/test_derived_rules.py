"""A spec without ``[fallback]`` trains and serves; the rules derived at training serve when the
model cannot (issue #10 item 6), and a blank contributes nothing to them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import StandardScaler

from ml_core import derived_rules
from ml_core.dataset import training_set
from ml_core.fallback import RuleScorer
from ml_core.features import encode_leads
from ml_core.lifecycle import train_and_register
from ml_core.pool import ModelPool
from ml_core.registry import ONNX_FILE, Registry
from ml_core.scoring import score_batch
from ml_core.spec import Fallback
from tests.blank_tables import BLANK_MODEL, BLANK_SPEC_TOML, blank_lead, blank_table
from tests.stores import registry_at, set_pointers


@pytest.fixture(scope="module")
def trained_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("derived")
    (root / BLANK_MODEL).mkdir()
    (root / BLANK_MODEL / "spec.toml").write_text(BLANK_SPEC_TOML)
    blank_table().to_csv(root / "export.csv", index=False)
    train_and_register(registry_at(root), BLANK_MODEL, data=root / "export.csv", folds=3)
    return root


@pytest.fixture
def registry(trained_root: Path, tmp_path: Path) -> Registry:
    """A private copy: tests break its artifacts."""
    import shutil

    shutil.copytree(trained_root, tmp_path / "models")
    return registry_at(tmp_path / "models")


def test_derived_rules_are_the_raw_scale_form_of_a_logistic_regression(registry: Registry) -> None:
    spec = registry.spec(BLANK_MODEL)
    data = training_set(spec, blank_table(), "t")
    entry = derived_rules.derive(spec, data.X, data.y)
    X0 = np.nan_to_num(data.X.astype(np.float64), nan=0.0)
    scaler = StandardScaler().fit(X0)
    expected = LogisticRegression(max_iter=1000).fit(scaler.transform(X0), data.y).predict_proba(scaler.transform(X0))[:, 1]
    rules = Fallback(intercept=entry["intercept"], weights=entry["weights"])
    p = RuleScorer(spec, "test", rules).predict_proba(data.X)
    np.testing.assert_allclose(p, expected, atol=1e-4)
    assert set(entry["weights"]["channel"]) == {"ads", "referral", "walk_in"}
    assert roc_auc_score(data.y, p) > 0.65


def test_a_spec_without_fallback_trains_serves_and_keeps_its_rules_in_the_card(registry: Registry) -> None:
    spec = registry.spec(BLANK_MODEL)
    assert spec.fallback is None
    card = registry.card(BLANK_MODEL, "v1")
    assert card["fallback_rules"]["weights"].keys() == set(spec.feature_names)
    served = ModelPool(registry).get(BLANK_MODEL)
    results = score_batch(spec, served.scorer, [blank_lead("a"), blank_lead("b", income=80_000.0, channel="referral")])
    assert [r["served_by"] for r in results] == ["onnx", "onnx"]
    assert results[0]["probability"] != results[1]["probability"]


def test_derived_rules_serve_when_the_model_is_broken(registry: Registry) -> None:
    onnx = registry.root / BLANK_MODEL / "v1" / ONNX_FILE
    onnx.write_bytes(onnx.read_bytes() + b"\0")
    spec = registry.spec(BLANK_MODEL)
    served = ModelPool(registry).get(BLANK_MODEL)
    leads = [blank_lead("a"), blank_lead("b", income=80_000.0, visits=6, mortgage=True, channel="referral")]
    results = score_batch(spec, served.scorer, leads)
    assert [r["served_by"] for r in results] == ["fallback", "fallback"]
    entry = registry.card(BLANK_MODEL, "v1")["fallback_rules"]
    expected = RuleScorer(spec, "", Fallback(entry["intercept"], entry["weights"])).predict_proba(encode_leads(spec, leads).X)
    assert [r["probability"] for r in results] == [round(float(p), 6) for p in expected]
    assert results[1]["probability"] > results[0]["probability"]  # the rules rank, not a constant 0.5


def test_without_fallback_or_card_the_rules_say_they_know_nothing(registry: Registry) -> None:
    set_pointers(registry, BLANK_MODEL, champion=None)
    spec = registry.spec(BLANK_MODEL)
    assert derived_rules.rules_for(registry, spec) is None
    (result,) = score_batch(spec, ModelPool(registry).get(BLANK_MODEL).scorer, [blank_lead("a", income=90_000.0)])
    assert (result["served_by"], result["probability"]) == ("fallback", 0.5)


def test_rules_follow_a_champion_registered_after_the_pool_first_served_the_model(registry: Registry) -> None:
    class Clock:
        now = 1000.0

        def __call__(self) -> float:
            return self.now

    # Given a pool that served the model before it had a champion (rules that know nothing)
    champion = registry.champion(BLANK_MODEL)
    set_pointers(registry, BLANK_MODEL, champion=None)
    clock = Clock()
    served = ModelPool(registry, clock=clock, reset_after_seconds=5).get(BLANK_MODEL)
    spec = registry.spec(BLANK_MODEL)
    X = encode_leads(spec, [blank_lead("a", income=90_000.0, channel="referral")]).X
    assert served.scorer.route(X)[1].served_by == "fallback" and served.scorer.fallback.predict_proba(X)[0] == 0.5
    # When the champion appears and the breaker's trial loads it
    set_pointers(registry, BLANK_MODEL, champion=champion)
    clock.now += 6
    assert served.scorer.route(X)[1].served_by == "onnx"
    # Then the rules that would serve next are the ones derived with that champion
    entry = registry.card(BLANK_MODEL, "v1")["fallback_rules"]
    expected = RuleScorer(spec, "", Fallback(entry["intercept"], entry["weights"])).predict_proba(X)
    np.testing.assert_array_equal(served.scorer.fallback.predict_proba(X), expected)
    assert expected[0] != 0.5
