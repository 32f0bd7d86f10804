"""The model families training chooses from, each tuned on the rows it is given and on nothing else.

``build(family, X, y, plan)`` returns a fitted estimator. Tuning happens inside ``build`` on the
rows passed in: when training calls it on an outer training fold, the evaluation fold is never
seen (nested by construction), and the final refit on every row tunes again on every row.

- ``logistic_regression``: StandardScaler + LogisticRegression; C is the one of ``C_GRID`` with the
  best inner 3-fold log loss.
- ``gradient_boosting``: HistGradientBoosting; ``plan.configs`` settings (learning rate, leaves, L2,
  minimum leaf size) are each fitted on 75% of the rows with early stopping on the other 25%; the
  one with the best validation log loss is refitted on all rows for as many iterations as early
  stopping ran. The booster's own log loss keeps its probabilities honest, so there is no
  calibration wrapper (explanations read its margin directly).
- ``blend``: the average of the two above's probabilities (soft ``VotingClassifier``, exported to
  ONNX like the others), each with its tuned settings.
- ``mlp``: StandardScaler + a small neural network: the family ``ml_core.optimize`` can quantize to
  INT8. Not in ``DEFAULT_FAMILIES``: on small real tables it lost to both plain baselines
  (AUC 0.54-0.59 where they reached 0.72); it is fitted only when asked for (``families``).

``SIMPLICITY`` orders the families for the selection rule, simplest first. Missing values (NaN)
reach the booster as they are (it routes them natively); the other families start with
``ml_core.imputation.ImputeWithIndicator`` (medians, plus an indicator column for each column that
had blanks in training), which carries its own ONNX converter: skl2onnx 1.20 exports neither
``SimpleImputer(add_indicator=True)`` nor ``MissingIndicator``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.ensemble import HistGradientBoostingClassifier, VotingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.model_selection import StratifiedKFold, train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from ml_core.imputation import imputed

SIMPLICITY = ("logistic_regression", "gradient_boosting", "blend", "mlp")
DEFAULT_FAMILIES = ("logistic_regression", "gradient_boosting", "blend")
C_GRID = (0.001, 0.01, 0.1, 1.0, 10.0)
BOOSTER_GRID = {
    "learning_rate": (0.05, 0.1),
    "max_leaf_nodes": (4, 8, 16, 31),
    "min_samples_leaf": (20, 50, 100),
    "l2_regularization": (0.0, 1.0, 10.0),
}
BOOSTER_FIRST = {"learning_rate": 0.05, "max_leaf_nodes": 8, "min_samples_leaf": 50, "l2_regularization": 1.0}
"""Tried first whatever the budget: small trees, a moderate rate, some L2 (sane on small noisy tables)."""
MAX_ITER, PATIENCE = 500, 20
MAX_CONFIGS = 6
# Cost model of one booster fit, from a probe fit of ``BOOSTER_FIRST`` on the rows at hand: per
# iteration a fixed cost plus a cost per (row x column), measured on one thread of this 2-core
# machine (1,000 x 22: 0.8 ms; 3,000 x 85: 2.7 ms; 75,000 x 20: 15 ms), times 1.5 because other
# settings may run longer. Iterations counted rather than time measured: the settings tried, hence
# the model, depend only on the data, the seed and the budget, never on how busy the machine is.
SECONDS_PER_ITERATION = 6e-4
SECONDS_PER_CELL_ITERATION = 1e-8
FIXED_SECONDS_PER_FIT = 0.05
BOOSTER_SHARE = 0.4
"""Of the time budget, the share the booster's search is sized to."""


@dataclass(frozen=True)
class Plan:
    """How much tuning each ``build`` does: the same for every fold, so the model is reproducible."""

    seed: int
    configs: int
    """Booster settings tried per build (the first is ``BOOSTER_FIRST``)."""
    probe_iterations: int = 0
    """Iterations early stopping let the probe fit run (what the cost model scales with)."""

    def describe(self) -> str:
        return (f"C from {len(C_GRID)} values by inner 3-fold log loss; {self.configs} booster setting(s) "
                f"with early stopping (probe: {self.probe_iterations} iterations)")


def plan(X: np.ndarray, y: np.ndarray, builds: int, time_budget: float, seed: int) -> Plan:
    """Booster settings to try per build so ``builds`` builds fit ``time_budget`` seconds (1 to ``MAX_CONFIGS``).

    ``BOOSTER_SHARE`` of the budget goes to the booster's search (each setting fits on 75% of the
    rows, then one refit on all of them); the rest is left for the linear model, the refits, the
    export and a machine busier than the one the cost model was measured on.
    """
    X_in, X_val, y_in, y_val = train_test_split(X, y, test_size=0.25, stratify=y, random_state=seed)
    iterations = _fit_setting(BOOSTER_FIRST, X_in, X_val, y_in, y_val, seed)[2]
    rows, columns = X.shape
    per_fit = 1.5 * iterations * (SECONDS_PER_ITERATION + 0.75 * rows * columns * SECONDS_PER_CELL_ITERATION) + FIXED_SECONDS_PER_FIT
    affordable = (BOOSTER_SHARE * time_budget / builds / per_fit - 1.0) / 0.75
    return Plan(seed=seed, configs=int(np.clip(np.floor(affordable), 1, MAX_CONFIGS)), probe_iterations=iterations)


def build(family: str, X: np.ndarray, y: np.ndarray, plan: Plan) -> Any:
    """``family`` tuned and fitted on (X, y)."""
    if family == "logistic_regression":
        return tuned_linear(X, y, plan)
    if family == "gradient_boosting":
        return tuned_booster(X, y, plan)
    if family == "blend":
        return blend(tuned_linear(X, y, plan), tuned_booster(X, y, plan), X, y)
    if family == "mlp":
        return _head(X, [("scale", StandardScaler()), ("model", MLPClassifier(
            hidden_layer_sizes=(32, 16), alpha=1e-3, early_stopping=True, max_iter=300, random_state=plan.seed))]).fit(X, y)
    raise ValueError(f"unknown model family {family!r}; choose from {list(SIMPLICITY)}")


def tuned_linear(X: np.ndarray, y: np.ndarray, plan: Plan) -> Pipeline:
    inner = list(StratifiedKFold(n_splits=3, shuffle=True, random_state=plan.seed).split(X, y))

    def inner_loss(C: float) -> float:
        losses = [log_loss(y[te], _linear(X, C).fit(X[tr], y[tr]).predict_proba(X[te])[:, 1], labels=[0, 1]) for tr, te in inner]
        return float(np.mean(losses))

    best = min(C_GRID, key=inner_loss)  # ties keep the smaller C: the stronger regularization
    return _linear(X, best).fit(X, y)


def tuned_booster(X: np.ndarray, y: np.ndarray, plan: Plan) -> HistGradientBoostingClassifier:
    X_in, X_val, y_in, y_val = train_test_split(X, y, test_size=0.25, stratify=y, random_state=plan.seed)
    settings = (_fit_setting(params, X_in, X_val, y_in, y_val, plan.seed) for params in booster_settings(plan))
    _, params, iterations = min(settings, key=lambda t: t[0])
    return HistGradientBoostingClassifier(**params, max_iter=iterations, early_stopping=False, random_state=plan.seed).fit(X, y)


def _fit_setting(
    params: dict[str, Any], X_in: np.ndarray, X_val: np.ndarray, y_in: np.ndarray, y_val: np.ndarray, seed: int
) -> tuple[float, dict[str, Any], int]:
    """Validation log loss of a setting fitted with early stopping on (X_val, y_val), and its iterations."""
    model = HistGradientBoostingClassifier(
        **params, max_iter=MAX_ITER, early_stopping=True, n_iter_no_change=PATIENCE, scoring="loss", random_state=seed
    ).fit(X_in, y_in, X_val=X_val, y_val=y_val)
    return float(log_loss(y_val, model.predict_proba(X_val)[:, 1], labels=[0, 1])), params, int(model.n_iter_)


def booster_settings(plan: Plan) -> list[dict[str, Any]]:
    """``plan.configs`` settings: ``BOOSTER_FIRST``, then a seeded random draw from ``BOOSTER_GRID``."""
    grid = [dict(zip(BOOSTER_GRID, values)) for values in itertools.product(*BOOSTER_GRID.values())]
    rest = [g for g in grid if g != BOOSTER_FIRST]
    order = np.random.default_rng(plan.seed).permutation(len(rest))
    return [BOOSTER_FIRST] + [rest[i] for i in order[: plan.configs - 1]]


def blend(linear: Pipeline, booster: HistGradientBoostingClassifier, X: np.ndarray, y: np.ndarray) -> VotingClassifier:
    """Soft vote of the two tuned models, refitted with their settings (deterministic: same fits)."""
    fixed = booster.get_params()
    estimators = [("logistic_regression", clone(linear)), ("gradient_boosting", HistGradientBoostingClassifier(**fixed))]
    # flatten_transform=False: skl2onnx 1.20 exports only that form of a soft VotingClassifier
    return VotingClassifier(estimators, voting="soft", flatten_transform=False).fit(X, y)


def tuned_settings(family: str, model: Any) -> dict[str, Any]:
    """What tuning chose, for the card."""
    if family == "logistic_regression":
        return {"C": float(model.named_steps["model"].C)}
    if family == "gradient_boosting":
        params = model.get_params()
        return {k: params[k] for k in (*BOOSTER_GRID, "max_iter")}
    if family == "blend":
        parts = model.named_estimators_
        return {name: tuned_settings(name, parts[name]) for name in ("logistic_regression", "gradient_boosting")}
    return {}


def _linear(X: np.ndarray, C: float) -> Pipeline:
    return _head(X, [("scale", StandardScaler()), ("model", LogisticRegression(C=C, max_iter=1000))])


def _head(X: np.ndarray, steps: list[tuple[str, BaseEstimator]]) -> Pipeline:
    # Always: a lead may leave blank a feature the spec allows to be missing even when no training
    # row did, and the exported graph must then read it as training would (a median, not NaN).
    return imputed(*steps)

