"""Feature contributions to one lead's score, exact and additive in log-odds.

Explanations read the native scikit-learn model kept beside the ONNX file (SHAP cannot read ONNX),
in float64. For a lead x whose native probability is p:

    base_value + sum(contributions) == logit(p) == ln(p / (1 - p))

exactly, up to float rounding, for the three families training produces:

- ``logistic_regression`` (StandardScaler + LogisticRegression): logit(p) = b + sum_j w_j z_j with
  z_j = (x_j - mean_j) / scale_j, so contribution_j = w_j z_j and base_value = b, the log-odds of a
  lead at the training mean. No approximation (``method: "linear"``).
- ``gradient_boosting`` (HistGradientBoosting, alone or in a sigmoid CalibratedClassifierCV with one
  booster, as versions trained before the out-of-fold protocol were): SHAP TreeExplainer
  (path-dependent) splits the booster's raw margin m(x) = E[m] + sum_j phi_j. A sigmoid calibrator
  serves p = 1 / (1 + exp(a m + b)), i.e. logit(p) = -a m - b: affine in the margin, so
  contribution_j = -a phi_j and base_value = -a E[m] - b are exact in the served log-odds
  (``method: "tree_shap"``; ``calibration`` gives slope -a and intercept -b, so the raw margin is
  (output - intercept) / slope). A bare booster serves sigmoid(m): slope 1, intercept 0.
- ``mlp`` (StandardScaler + MLPClassifier): no closed form, so exact Shapley values of the
  log-odds against one reference lead, the training mean (the scaler's ``mean_``): every coalition
  of features (2^n of them, n <= ``MAX_SHAPLEY_FEATURES``) is evaluated with the lead's values in
  the coalition and the mean's elsewhere. Then base_value = logit of the mean lead (as for the
  linear model) and the contributions sum to logit(p) - base_value exactly (``method:
  "baseline_shapley"``). 1,024 rows through the network for ten features: about a millisecond.
- ``blend`` (soft vote of the two above): averaged probabilities are not additive in log-odds, so
  the same exact baseline Shapley values as the ``mlp``, against the linear model's training mean.

Served scores come from ONNX in float32; they differ from p by at most the parity tolerance
checked at registration. Categorical features sum their one-hot columns into one contribution.

Blanks: the linear and neural pipelines start with ``ImputeWithIndicator`` (``ml_core.imputation``).
For the linear model a blank feature's contribution is its imputed median's term plus its
missing indicator's term (both exact); Shapley values and tree SHAP read the blank (NaN) as the
lead's value. Either way the share a blank drove is the feature's own, and the explanation marks
the feature ``"missing": true`` with value ``null`` (an unseen category scored as "other" shows
``"other"``).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ml_core.errors import ExplanationUnavailableError
from ml_core.registry import Registry
from ml_core.spec import ModelSpec

MAX_SHAPLEY_FEATURES = 16
"""2^16 rows through the network per lead is still well under a second; beyond, no explanation."""

if TYPE_CHECKING:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from ml_core.imputation import ImputeWithIndicator


@dataclass(frozen=True)
class Explanation:
    method: str
    base_value: float
    contributions: np.ndarray
    """One per spec feature, in spec order, in log-odds."""
    probability: float
    calibration: tuple[float, float] | None = None

    @property
    def output(self) -> float:
        return self.base_value + float(self.contributions.sum())

    def to_json(self, spec: ModelSpec, row: np.ndarray, top_k: int) -> dict[str, Any]:
        """The ``top_k`` largest contributions by magnitude; ``rest`` sums the others."""
        order = np.argsort(-np.abs(self.contributions), kind="stable")
        top, others = order[:top_k], order[top_k:]
        values = _feature_values(spec, row)
        return {
            "method": self.method,
            "space": "log_odds",
            "base_value": self.base_value,
            "output": self.output,
            "probability": self.probability,
            "top": [
                {
                    "feature": spec.features[j].name,
                    "value": values[j],
                    "contribution": float(self.contributions[j]),
                    **({"missing": True} if values[j] is None else {}),
                }
                for j in top
            ],
            "rest": float(self.contributions[others].sum()),
            **({"calibration": {"slope": self.calibration[0], "intercept": self.calibration[1]}} if self.calibration else {}),
        }


class ModelExplainer:
    """Explains one native model's predictions, feature by feature of its spec."""

    def __init__(self, spec: ModelSpec, version: str, model: Any) -> None:
        self.spec, self.version, self.model = spec, version, model
        self._explain = _family(spec, version, model)
        self._groups = _column_groups(spec)

    def explain(self, X: np.ndarray) -> list[Explanation]:
        X = np.asarray(X, dtype=np.float64)
        method, base, per_column, calibration = self._explain(X)
        per_feature = np.stack([per_column[:, cols].sum(axis=1) for cols in self._groups], axis=1)
        probability = self.model.predict_proba(X)[:, 1]
        return [
            Explanation(method, float(base[i]), per_feature[i], float(probability[i]), calibration)
            for i in range(len(X))
        ]


class ExplainerPool:
    """Native models and their explainers, loaded on first use, once per process and version."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._loaded: dict[tuple[str, str], ModelExplainer] = {}
        self._lock = threading.Lock()

    def get(self, name: str, version: str) -> ModelExplainer:
        key = (name, version)
        explainer = self._loaded.get(key)
        if explainer is None:
            with self._lock:
                explainer = self._loaded.get(key)
                if explainer is None:
                    if version == "rules":
                        raise ExplanationUnavailableError(name, version, "scored by the rule-based fallback")
                    native = self.registry.load_native(name, version)  # checksum-verified before unpickling
                    explainer = ModelExplainer(self.registry.spec(name), version, native)
                    self._loaded[key] = explainer
        return explainer


Family = Any  # (X) -> (method, base per row, contributions per column, calibration)


def _family(spec: ModelSpec, version: str, model: Any) -> Family:
    # Imported here: scikit-learn costs every process ~180 MiB of RSS, and only explaining needs it
    # (the native model being explained has imported it already).
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.ensemble import HistGradientBoostingClassifier, VotingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    from ml_core.imputation import ImputeWithIndicator

    steps = [step for _, step in model.steps] if isinstance(model, Pipeline) else []
    imputer = steps.pop(0) if steps and isinstance(steps[0], ImputeWithIndicator) else None
    if len(steps) == 2:
        scaler, last = steps
        if isinstance(scaler, StandardScaler) and isinstance(last, LogisticRegression):
            return _linear(imputer, scaler, last)
        if isinstance(scaler, StandardScaler) and isinstance(last, MLPClassifier) and scaler.with_mean:
            if len(spec.features) > MAX_SHAPLEY_FEATURES:
                raise ExplanationUnavailableError(spec.name, version, f"more than {MAX_SHAPLEY_FEATURES} features for exact Shapley values")
            # the reference lead: the training mean of each input column (after imputation), no blanks
            reference = np.asarray(scaler.mean_, dtype=np.float64)[: len(spec.columns)]
            return _baseline_shapley(model, reference, _column_groups(spec))
    if isinstance(model, HistGradientBoostingClassifier):
        return _calibrated_tree(model, -1.0, 0.0)
    linear = getattr(model, "named_estimators_", {}).get("logistic_regression") if isinstance(model, VotingClassifier) else None
    scalers = [step for _, step in linear.steps if isinstance(step, StandardScaler)] if isinstance(linear, Pipeline) else []
    if scalers:  # the blend: exact Shapley values against the linear part's training means
        if len(spec.features) > MAX_SHAPLEY_FEATURES:
            raise ExplanationUnavailableError(spec.name, version, f"more than {MAX_SHAPLEY_FEATURES} features for exact Shapley values")
        reference = np.asarray(scalers[0].mean_, dtype=np.float64)[: len(spec.columns)]
        return _baseline_shapley(model, reference, _column_groups(spec))
    if isinstance(model, CalibratedClassifierCV) and len(getattr(model, "calibrated_classifiers_", ())) == 1:
        calibrated = model.calibrated_classifiers_[0]
        booster, calibrators = calibrated.estimator, calibrated.calibrators
        if isinstance(booster, HistGradientBoostingClassifier) and calibrated.method == "sigmoid" and len(calibrators) == 1:
            return _calibrated_tree(booster, float(calibrators[0].a_), float(calibrators[0].b_))
    raise ExplanationUnavailableError(spec.name, version, f"no explainer for {type(model).__name__} models")


def _linear(imputer: ImputeWithIndicator | None, scaler: StandardScaler, lr: LogisticRegression) -> Family:
    mean = scaler.mean_ if scaler.with_mean else 0.0
    scale = scaler.scale_ if scaler.with_std else 1.0
    weights, intercept = lr.coef_[0], float(lr.intercept_[0])

    def explain(X: np.ndarray) -> tuple[str, np.ndarray, np.ndarray, None]:
        if imputer is None:
            return "linear", np.full(len(X), intercept), weights * (X - mean) / scale, None
        per_column = weights * (imputer.transform(X) - mean) / scale
        return "linear", np.full(len(X), intercept), imputer.fold(per_column), None

    return explain


def _calibrated_tree(booster: HistGradientBoostingClassifier, a: float, b: float) -> Family:
    import shap  # imported here: only the deep tier and explain=True ever pay for it (~0.2 s once)

    explainer = shap.TreeExplainer(booster)
    expected = float(np.ravel(explainer.expected_value)[0])
    slope, intercept = -a, -b

    def explain(X: np.ndarray) -> tuple[str, np.ndarray, np.ndarray, tuple[float, float]]:
        phi = np.asarray(explainer.shap_values(X), dtype=np.float64).reshape(len(X), -1)
        return "tree_shap", np.full(len(X), slope * expected + intercept), slope * phi, (slope, intercept)

    return explain


def _baseline_shapley(model: Any, reference: np.ndarray, groups: list[list[int]]) -> Family:
    n = len(groups)
    coalitions = ((np.arange(2**n)[:, None] >> np.arange(n)) & 1).astype(bool)  # row s: the features in s
    columns = np.zeros((2**n, len(reference)), dtype=bool)
    for j, cols in enumerate(groups):
        columns[:, cols] = coalitions[:, [j]]
    size = coalitions.sum(axis=1)
    # Shapley weight of adding a feature to a coalition of |S| others: |S|! (n - |S| - 1)! / n!
    weight = np.array([math.factorial(k) * math.factorial(n - k - 1) / math.factorial(n) for k in range(n)])
    # per feature j: the coalitions without it, each one's weight, and where it sits in the lead's columns
    without = [np.flatnonzero(~coalitions[:, j]) for j in range(n)]
    weights = [weight[size[w]] for w in without]
    firsts = [cols[0] for cols in groups]

    def explain(X: np.ndarray) -> tuple[str, np.ndarray, np.ndarray, None]:
        base = np.empty(len(X))
        per_column = np.zeros_like(X)
        for i, x in enumerate(X):
            f = _log_odds(model.predict_proba(np.where(columns, x, reference))[:, 1])
            base[i] = f[0]  # the empty coalition: the reference lead itself
            for j in range(n):
                per_column[i, firsts[j]] = np.sum(weights[j] * (f[without[j] + (1 << j)] - f[without[j]]))
        return "baseline_shapley", base, per_column, None

    return explain


def _log_odds(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-15, 1.0 - 1e-15)
    log_odds: np.ndarray = np.log(p) - np.log1p(-p)
    return log_odds


def _column_groups(spec: ModelSpec) -> list[list[int]]:
    groups, at = [], 0
    for feature in spec.features:
        groups.append(list(range(at, at + len(feature.columns))))
        at += len(feature.columns)
    return groups


def _feature_values(spec: ModelSpec, row: np.ndarray) -> list[Any]:
    """Each feature's value in the lead: None for a blank, ``"other"`` for an unseen category."""
    values: list[Any] = []
    at = 0
    for feature in spec.features:
        width = len(feature.columns)
        cells = row[at : at + width]
        at += width
        if np.isnan(cells).any():
            values.append(None)
        elif feature.kind == "categorical":
            values.append(feature.categories[int(np.argmax(cells))] if cells.any() else "other")
        else:
            values.append(float(cells[0]))
    return values
