"""Explanations are exact: base value + contributions reproduce the native model's log-odds."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import logit
from threadpoolctl import threadpool_limits

from ml_core.candidates import Plan, build
from ml_core.dataset import TrainingSet
from ml_core.errors import ExplanationUnavailableError
from ml_core.explain import ExplainerPool, ModelExplainer
from ml_core.registry import Registry
from ml_core.spec import ModelSpec
from ml_core.training import TrainedModel

FAMILIES = ["logistic_regression", "gradient_boosting", "blend", "mlp"]
METHODS = {"logistic_regression": "linear", "gradient_boosting": "tree_shap", "blend": "baseline_shapley", "mlp": "baseline_shapley"}


@pytest.fixture(scope="module")
def families(train_set: TrainingSet) -> dict[str, object]:
    # Each family is forced by fitting it directly, whichever one training would pick; one thread,
    # as training does, so OpenMP never spins against other work on the machine.
    with threadpool_limits(limits=1):
        return {name: build(name, train_set.X, train_set.y, Plan(seed=7, configs=2)) for name in FAMILIES}


@pytest.fixture(params=FAMILIES)
def fitted(request: pytest.FixtureRequest, families: dict[str, object]) -> tuple[str, object]:
    return request.param, families[request.param]


def test_contributions_plus_base_value_reproduce_the_native_log_odds(
    fitted: tuple[str, object], spec: ModelSpec, train_set: TrainingSet
) -> None:
    family, model = fitted
    # exact Shapley values cost 2^10 predictions per lead: fewer leads for those families
    X = train_set.X[: 40 if METHODS[family] == "baseline_shapley" else 200].astype(np.float64)
    explanations = ModelExplainer(spec, "v1", model).explain(X)
    native = model.predict_proba(X)[:, 1]  # type: ignore[attr-defined]
    for explanation, p in zip(explanations, native):
        assert explanation.method == METHODS[family]
        assert explanation.contributions.shape == (len(spec.features),)
        assert explanation.probability == pytest.approx(p, abs=1e-12)
        assert explanation.base_value + explanation.contributions.sum() == pytest.approx(logit(p), abs=1e-8)
    # contributions differ between leads: a constant explanation would also "add up" for one lead
    assert np.ptp([e.contributions for e in explanations], axis=0).max() > 0.1


def test_tree_contributions_are_the_shap_margin_mapped_through_the_calibrator(
    families: dict[str, object], spec: ModelSpec, train_set: TrainingSet
) -> None:
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.ensemble import HistGradientBoostingClassifier

    # versions registered before out-of-fold training wrapped the booster in a sigmoid calibrator
    with threadpool_limits(limits=1):
        model = CalibratedClassifierCV(HistGradientBoostingClassifier(max_iter=50, random_state=7), method="sigmoid", cv=3, ensemble=False)
        model.fit(train_set.X, train_set.y)
    X = train_set.X[:50].astype(np.float64)
    booster = model.calibrated_classifiers_[0].estimator
    margin = booster.decision_function(X)
    for explanation, m in zip(ModelExplainer(spec, "v1", model).explain(X), margin):
        slope, intercept = explanation.calibration  # type: ignore[misc]
        assert (explanation.output - intercept) / slope == pytest.approx(m, abs=1e-9)


def test_top_k_json_keeps_additivity_with_rest(fitted: tuple[str, object], spec: ModelSpec, train_set: TrainingSet) -> None:
    _, model = fitted
    row = train_set.X[3].astype(np.float64)
    explanation = ModelExplainer(spec, "v1", model).explain(row[None, :])[0]
    out = explanation.to_json(spec, row, top_k=3)
    assert len(out["top"]) == 3
    magnitudes = [abs(c["contribution"]) for c in out["top"]]
    assert magnitudes == sorted(magnitudes, reverse=True)
    assert magnitudes[-1] >= np.sort(np.abs(explanation.contributions))[-4]
    total = out["base_value"] + sum(c["contribution"] for c in out["top"]) + out["rest"]
    assert total == pytest.approx(logit(out["probability"]), abs=1e-9)
    named = {c["feature"]: c["value"] for c in out["top"]}
    for name, value in named.items():
        assert value == pytest.approx(row[spec.feature_names.index(name)])


def test_pool_loads_the_registered_native_model_once_and_refuses_rules(served_registry: Registry, trained: TrainedModel) -> None:
    pool = ExplainerPool(served_registry)
    first = pool.get("lead_scorer", "v1")
    assert pool.get("lead_scorer", "v1") is first
    assert type(first.model) is type(trained.model)
    with pytest.raises(ExplanationUnavailableError, match="rule-based fallback"):
        pool.get("lead_scorer", "rules")


def test_a_bare_booster_explains_its_own_margin(families: dict[str, object], spec: ModelSpec, train_set: TrainingSet) -> None:
    model = families["gradient_boosting"]
    X = train_set.X[:50].astype(np.float64)
    for explanation, m in zip(ModelExplainer(spec, "v1", model).explain(X), model.decision_function(X)):  # type: ignore[attr-defined]
        assert explanation.calibration == (1.0, 0.0)
        assert explanation.output == pytest.approx(m, abs=1e-9)


def test_unknown_model_family_is_a_typed_error(spec: ModelSpec, train_set: TrainingSet) -> None:
    from sklearn.tree import DecisionTreeClassifier

    with pytest.raises(ExplanationUnavailableError, match="DecisionTreeClassifier"):
        ModelExplainer(spec, "v9", DecisionTreeClassifier(max_depth=2).fit(train_set.X, train_set.y))



def test_exact_shapley_values_of_a_network_agree_with_the_linear_formula_on_a_linear_function(spec: ModelSpec) -> None:
    # A "network" whose log-odds are linear: its Shapley values must be w_j (x_j - reference_j) exactly.
    from ml_core.explain import _baseline_shapley, _column_groups

    groups = _column_groups(spec)
    width = groups[-1][-1] + 1
    rng = np.random.default_rng(3)
    w, reference = rng.normal(size=width), rng.normal(size=width)

    class Linear:
        def predict_proba(self, X: np.ndarray) -> np.ndarray:
            p = 1.0 / (1.0 + np.exp(-(X @ w)))
            return np.stack([1 - p, p], axis=1)

    X = rng.normal(size=(3, width))
    method, base, per_column, _ = _baseline_shapley(Linear(), reference, groups)(X)
    expected = np.stack([[(w[c] * (x[c] - reference[c])).sum() for c in groups] for x in X])
    assert method == "baseline_shapley"
    assert np.allclose([[row[c].sum() for c in groups] for row in per_column], expected, atol=1e-9)
    assert np.allclose(base, reference @ w)
