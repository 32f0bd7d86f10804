"""Fit candidate models, cross-validate, keep the best by the spec's metric, and gate it.

Follows scikit-learn's contract: nothing here runs on the serving path.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.base import clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, brier_score_loss, get_scorer, log_loss, roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_score, train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from ml_core import onnx_model
from ml_core.dataset import TrainingSet
from ml_core.errors import RegistrationRefusedError
from ml_core.imputation import blanked, imputed
from ml_core.spec import ModelSpec

log = logging.getLogger(__name__)


def candidates(seed: int) -> dict[str, Any]:
    """The families every spec is fitted with.

    The tree model is wrapped in sigmoid calibration (``ensemble=False``: one booster, refit on
    all training rows, so explanations read a single native model). Logistic regression is
    calibrated by its own log-loss objective, and so is the small neural network (``mlp``): it
    exports to ONNX MatMul/Gemm operators, the ones ONNX Runtime can quantize to INT8
    (``ml_core.optimize``), which neither a tree ensemble nor skl2onnx's LinearClassifier offers.
    The booster reads blanks (NaN) natively; the other two impute them inside their pipeline
    (``ml_core.imputation``), so the exported ONNX treats a blank as training did.
    """
    return {
        "gradient_boosting": CalibratedClassifierCV(
            HistGradientBoostingClassifier(max_iter=150, learning_rate=0.08, max_leaf_nodes=15, random_state=seed),
            method="sigmoid",
            cv=3,
            ensemble=False,
        ),
        "logistic_regression": imputed(("scale", StandardScaler()), ("model", LogisticRegression(max_iter=1000))),
        "mlp": imputed(
            ("scale", StandardScaler()),
            ("model", MLPClassifier(hidden_layer_sizes=(32, 16), alpha=1e-3, early_stopping=True, max_iter=300, random_state=seed)),
        ),
    }


_FROM_PROBABILITIES = {
    "roc_auc": roc_auc_score,
    "average_precision": average_precision_score,
    "neg_log_loss": lambda y, p: -log_loss(y, p, labels=[0, 1]),
    "neg_brier_score": lambda y, p: -brier_score_loss(y, p),
}


def metric_value(spec: ModelSpec, y: np.ndarray, p: np.ndarray) -> float:
    """The spec's metric (higher is better) from positive-class probabilities: how served artifacts
    (ONNX, INT8, compact) are compared on the same held-out rows as the native model."""
    score = _FROM_PROBABILITIES.get(spec.metric)
    if score is None:
        raise RegistrationRefusedError(spec.name, [f"metric {spec.metric!r} cannot be computed from probabilities"])
    return float(score(y, p))


@dataclass(frozen=True)
class Split:
    """The rows a model was fitted on and the held-out rows it was judged on."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray


@dataclass
class TrainedModel:
    spec: ModelSpec
    family: str
    model: Any
    onnx: bytes
    metrics: dict[str, Any] = field(default_factory=dict)
    cross_validation: dict[str, dict[str, float]] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    """Gates this model failed (empty: registrable); ``train`` raises instead of returning them."""
    split: Split | None = field(default=None, repr=False, compare=False)


def train(
    spec: ModelSpec,
    data: TrainingSet,
    *,
    seed: int = 42,
    folds: int = 5,
    holdout: float = 0.2,
    parity_tolerance: float = 1e-4,
) -> TrainedModel:
    """Train, pick and check a model for ``spec``. Raises ``RegistrationRefusedError`` if it fails a gate.

    Runs on one thread: the booster's OpenMP pool spins on every core, and beside busy scoring
    workers (or any other process) that oversubscription slowed a 5-second fit to minutes.
    """
    trained = fit(spec, data, seed=seed, folds=folds, holdout=holdout, parity_tolerance=parity_tolerance)
    if trained.failures:
        raise RegistrationRefusedError(spec.name, trained.failures)
    return trained


def fit(
    spec: ModelSpec,
    data: TrainingSet,
    *,
    seed: int = 42,
    folds: int = 5,
    holdout: float = 0.2,
    parity_tolerance: float = 1e-4,
    families: Collection[str] | None = None,
) -> TrainedModel:
    """``train`` without raising: the gates it failed are in ``failures``, the split in ``split``,
    so a caller (retraining) can add gates of its own and report every number at once.

    ``families`` restricts the choice to some of ``candidates`` (default: all of them), so one
    family can be measured on its own, as ``bench/lifecycle_bench.py`` does.
    """
    pool = _restricted(seed, families)
    with threadpool_limits(limits=1):
        return _fit_and_gate(spec, data, pool, seed, folds, holdout, parity_tolerance)


def _restricted(seed: int, families: Collection[str] | None) -> dict[str, Any]:
    every = candidates(seed)
    if families is None:
        return every
    unknown = sorted(set(families) - set(every))
    if unknown or not families:
        raise ValueError(f"unknown model families {unknown or '(none given)'}; choose from {sorted(every)}")
    return {name: every[name] for name in every if name in families}


def _fit_and_gate(
    spec: ModelSpec, data: TrainingSet, pool: dict[str, Any], seed: int, folds: int, holdout: float, parity_tolerance: float
) -> TrainedModel:
    X_train, X_test, y_train, y_test = train_test_split(
        data.X, data.y, test_size=holdout, stratify=data.y, random_state=seed
    )
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    cv: dict[str, dict[str, float]] = {}
    for name, estimator in pool.items():
        scores = cross_val_score(estimator, X_train, y_train, cv=splitter, scoring=spec.metric)
        cv[name] = {"mean": round(float(scores.mean()), 5), "std": round(float(scores.std()), 5)}
        log.info("model %s candidate %s: cv %s %.4f +- %.4f", spec.name, name, spec.metric, scores.mean(), scores.std())
    family = max(cv, key=lambda name: cv[name]["mean"])
    model = clone(pool[family]).fit(X_train, y_train)

    proba = model.predict_proba(X_test)[:, 1]
    holdout_score = float(get_scorer(spec.metric)(model, X_test, y_test))
    onnx = onnx_model.export(model, X_train.shape[1])
    parity = onnx_model.parity(onnx, model, np.vstack([X_test, blanked(spec, X_test, seed)]))  # and on blanks
    metrics = {
        "metric": spec.metric,
        "holdout": round(holdout_score, 5),
        "roc_auc": round(float(roc_auc_score(y_test, proba)), 5),
        "log_loss": round(float(log_loss(y_test, proba)), 5),
        "brier": round(float(brier_score_loss(y_test, proba)), 5),
        "quality_gate": spec.quality_gate,
        "parity_max_abs_diff": parity,
        "parity_tolerance": parity_tolerance,
        "holdout_rows": int(len(y_test)),
    }
    failures = []
    if holdout_score < spec.quality_gate:
        failures.append(
            f"quality gate: held-out {spec.metric} {holdout_score:.4f} < {spec.quality_gate:.4f} "
            f"(short by {spec.quality_gate - holdout_score:.4f})"
        )
    if not parity <= parity_tolerance:
        failures.append(
            f"ONNX parity: max |onnx - sklearn| probability {parity:.2e} > tolerance {parity_tolerance:.0e}"
        )
    return TrainedModel(
        spec=spec,
        family=family,
        model=model,
        onnx=onnx,
        metrics=metrics,
        cross_validation=cv,
        data={**data.fingerprint, "holdout_fraction": holdout, "seed": seed},
        failures=failures,
        split=Split(X_train, y_train, X_test, y_test),
    )
