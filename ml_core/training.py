"""Evaluate candidates out of fold, choose one by the one-SE rule, refit it on every row, and gate it.

The protocol (README, "Training"): repeated stratified K-fold over every labelled row, the same
folds for every candidate; each candidate is tuned and fitted inside each training fold
(``ml_core.candidates``) and predicts its evaluation fold. Selection (``ml_core.selection``) and
the reported metrics come from those out-of-fold (OOF) predictions; the chosen family is then
tuned and refitted on all rows, and that model is exported to ONNX and registered. With
``holdout`` > 0 a stratified share of the rows is first set aside: the protocol runs on the rest,
and the gate and metrics are measured on the held-out rows.

Follows scikit-learn's contract: nothing here runs on the serving path.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.model_selection import RepeatedStratifiedKFold, train_test_split
from threadpoolctl import threadpool_limits

from ml_core import candidates, onnx_model, selection
from ml_core.dataset import TrainingSet
from ml_core.errors import DatasetError, RegistrationRefusedError
from ml_core.imputation import blanked
from ml_core.parity import PARITY_TOLERANCE
from ml_core.ranking import METRICS, ranking_metrics
from ml_core.ranking import metric_value as _metric_value
from ml_core.spec import ModelSpec

log = logging.getLogger(__name__)

DEFAULT_TIME_BUDGET = 60.0
PARITY_ROWS = 2000
Progress = Callable[[str], None]


def repeats_for(rows: int) -> int:
    """Repeats of the K-fold by table size: a stable estimate where it is cheap and needed most."""
    return 3 if rows <= 2_000 else 2 if rows <= 10_000 else 1


def metric_value(spec: ModelSpec, y: np.ndarray, p: np.ndarray) -> float:
    """The spec's metric (higher is better) from positive-class probabilities: how served artifacts
    (ONNX, INT8, compact) and champions are compared on the same rows."""
    if spec.metric not in METRICS:
        raise RegistrationRefusedError(spec.name, [f"metric {spec.metric!r} is not one of {', '.join(METRICS)}"])
    return _metric_value(spec.metric, y, p)


@dataclass(frozen=True)
class Split:
    """Held-out rows, set aside before anything was fitted (``holdout`` > 0 only)."""

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
    """Per candidate: mean and std of the spec's metric over the folds, and its pooled OOF value."""
    selection: dict[str, Any] = field(default_factory=dict)
    """The protocol, the rule, the chosen family and why, the paired comparisons, the tuned settings."""
    data: dict[str, Any] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    """Gates this model failed (empty: registrable); ``train`` raises instead of returning them."""
    X: np.ndarray = field(kw_only=True, repr=False, compare=False)
    """The rows ``model`` was fitted on (every row, less the held-out ones if any)."""
    y: np.ndarray = field(kw_only=True, repr=False, compare=False)
    oof_proba: np.ndarray = field(kw_only=True, repr=False, compare=False)
    """Out-of-fold probability of the chosen family for each row of ``X``, averaged over repeats."""
    oof_y: np.ndarray = field(kw_only=True, repr=False, compare=False)
    """Labels aligned with ``oof_proba``."""
    holdout: Split | None = field(default=None, repr=False, compare=False)

    def evaluation_rows(self) -> tuple[np.ndarray, np.ndarray]:
        """Rows to compare served artifacts on: the held-out rows if any, else the fitted rows."""
        if self.holdout is not None:
            return self.holdout.X_test, self.holdout.y_test
        return self.X, self.y


def train(
    spec: ModelSpec,
    data: TrainingSet,
    *,
    seed: int = 42,
    folds: int = 5,
    repeats: int | None = None,
    holdout: float = 0.0,
    time_budget: float = DEFAULT_TIME_BUDGET,
    parity_tolerance: float = PARITY_TOLERANCE,
    families: Collection[str] | None = None,
    progress: Progress | None = None,
) -> TrainedModel:
    """Train, pick and check a model for ``spec``. Raises ``RegistrationRefusedError`` if it fails a gate."""
    trained = fit(spec, data, seed=seed, folds=folds, repeats=repeats, holdout=holdout, time_budget=time_budget,
                  parity_tolerance=parity_tolerance, families=families, progress=progress)
    if trained.failures:
        raise RegistrationRefusedError(spec.name, trained.failures)
    return trained


def fit(
    spec: ModelSpec,
    data: TrainingSet,
    *,
    seed: int = 42,
    folds: int = 5,
    repeats: int | None = None,
    holdout: float = 0.0,
    time_budget: float = DEFAULT_TIME_BUDGET,
    parity_tolerance: float = PARITY_TOLERANCE,
    families: Collection[str] | None = None,
    progress: Progress | None = None,
) -> TrainedModel:
    """``train`` without raising: the gates it failed are in ``failures``, so a caller (retraining)
    can add gates of its own and report every number at once.

    ``families`` restricts the choice (default ``candidates.DEFAULT_FAMILIES``), so one family can
    be measured on its own, as ``bench/lifecycle_bench.py`` does. ``repeats`` defaults to
    ``repeats_for(rows)``; ``time_budget`` (seconds) bounds the booster's search. Runs on one
    thread: the booster's OpenMP pool spins on every core, and beside busy scoring workers that
    oversubscription slowed a 5-second fit to minutes. Same data and seed give the same model.
    """
    pool = _families(families)
    started = time.perf_counter()
    say = progress or (lambda message: log.info("model %s: %s", spec.name, message))
    with threadpool_limits(limits=1):
        X, y, split = _set_aside(data, holdout, seed)
        rarest = int(np.bincount(y, minlength=2).min())
        if rarest < 2 * folds:
            raise DatasetError(spec.name, f"the rarer target class has {rarest} rows to fit on; {folds}-fold cross-validation "
                                          f"with tuning inside each fold needs at least {2 * folds}")
        protocol: dict[str, Any] = {"folds": folds, "repeats": repeats or repeats_for(len(y)), "holdout": holdout, "seed": seed, "rows": int(len(y))}
        splits = list(RepeatedStratifiedKFold(n_splits=folds, n_repeats=protocol["repeats"], random_state=seed).split(X, y))
        plan = candidates.plan(X, y, len(splits) + 1, time_budget, seed)
        say(f"{len(pool)} candidates x {len(splits)} folds ({folds} folds x {_repeats(protocol['repeats'])}) on {len(y):,} rows; "
            f"tuning: {plan.describe()}")
        oof, scores = _out_of_fold(spec, X, y, splits, folds, pool, plan, say)
        choice = selection.choose(scores, candidates.SIMPLICITY, folds, spec.metric)
        say(f"chose {choice.family}: {choice.reason}; refitting it on all {len(y):,} rows")
        model = candidates.build(choice.family, X, y, plan)
        onnx = onnx_model.export(model, X.shape[1])
    parity_X = _parity_rows(spec, X, split, seed)
    parity = onnx_model.parity(onnx, model, parity_X)
    oof_proba = oof[choice.family].mean(axis=0)
    metrics = _metrics(spec, model, y, oof_proba, scores[choice.family], split, parity, parity_tolerance, len(parity_X))
    cross_validation = {
        name: {"mean": round(float(s.mean()), 5), "std": round(float(s.std()), 5), "oof": round(metric_value(spec, y, oof[name].mean(axis=0)), 5)}
        for name, s in scores.items()
    }
    protocol_text = (f"out-of-fold predictions of {folds}-fold stratified cross-validation ({_repeats(protocol['repeats'])}) "
                     f"over {len(y):,} rows, the same folds for every candidate; the chosen family refitted on all of them")
    if split is not None:
        protocol_text += f"; {len(split.y_test):,} rows ({holdout:.0%}) held out for the gate"
    elapsed = time.perf_counter() - started
    return TrainedModel(
        spec=spec,
        family=choice.family,
        model=model,
        onnx=onnx,
        metrics=metrics,
        cross_validation=cross_validation,
        selection={
            "protocol": protocol_text, **protocol, "rule": selection.RULE, "chosen": choice.family, "reason": choice.reason,
            "comparisons": choice.comparisons, "tuning": plan.describe(), "time_budget_s": time_budget,
            "tuned": candidates.tuned_settings(choice.family, model), "seconds": round(elapsed, 1),
        },
        data={**data.fingerprint, "rows_fitted": int(len(y)), "holdout_fraction": holdout, "seed": seed},
        failures=_gates(spec, metrics, parity, parity_tolerance),
        X=X, y=y, oof_proba=oof_proba, oof_y=y.copy(), holdout=split,
    )


def _repeats(n: int) -> str:
    return f"{n} repeat{'s' if n > 1 else ''}"


def _families(families: Collection[str] | None) -> tuple[str, ...]:
    if families is None:
        return candidates.DEFAULT_FAMILIES
    unknown = sorted(set(families) - set(candidates.SIMPLICITY))
    if unknown or not families:
        raise ValueError(f"unknown model families {unknown or '(none given)'}; choose from {sorted(candidates.SIMPLICITY)}")
    return tuple(name for name in candidates.SIMPLICITY if name in families)


def _set_aside(data: TrainingSet, holdout: float, seed: int) -> tuple[np.ndarray, np.ndarray, Split | None]:
    if not holdout:
        return data.X, data.y, None
    X, X_test, y, y_test = train_test_split(data.X, data.y, test_size=holdout, stratify=data.y, random_state=seed)
    return X, y, Split(X_test, y_test)


def _out_of_fold(
    spec: ModelSpec, X: np.ndarray, y: np.ndarray, splits: list[tuple[np.ndarray, np.ndarray]], folds: int,
    pool: tuple[str, ...], plan: candidates.Plan, say: Progress,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """OOF probabilities (repeat x row) and per-fold metric scores of every candidate in ``pool``.

    The blend's fold model is the soft vote of the two tuned fold models, so its OOF probabilities
    are their average: computed from theirs rather than fitted a second time.
    """
    fitted = set(pool) - {"blend"} | ({"logistic_regression", "gradient_boosting"} if "blend" in pool else set())
    repeats = len(splits) // folds
    oof = {name: np.zeros((repeats, len(y))) for name in (*fitted, *pool)}
    scores = {name: np.zeros(len(splits)) for name in pool}
    for i, (train_rows, test_rows) in enumerate(splits):
        step = time.perf_counter()
        for name in sorted(fitted, key=candidates.SIMPLICITY.index):
            model = candidates.build(name, X[train_rows], y[train_rows], plan)
            oof[name][i // folds, test_rows] = model.predict_proba(X[test_rows])[:, 1]
        if "blend" in pool:
            oof["blend"][i // folds, test_rows] = (oof["logistic_regression"][i // folds, test_rows] + oof["gradient_boosting"][i // folds, test_rows]) / 2
        for name in pool:
            scores[name][i] = metric_value(spec, y[test_rows], oof[name][i // folds, test_rows])
        line = ", ".join(f"{name} {scores[name][i]:.4f}" for name in pool)
        say(f"fold {i + 1}/{len(splits)} (repeat {i // folds + 1}, fold {i % folds + 1}): {spec.metric} {line} [{time.perf_counter() - step:.1f}s]")
    return {name: oof[name] for name in pool}, scores


def _parity_rows(spec: ModelSpec, X: np.ndarray, split: Split | None, seed: int) -> np.ndarray:
    """Up to ``PARITY_ROWS`` fitted rows (a seeded sample), every held-out row, and copies of
    them with the features that may be missing blanked: the ONNX graph must read blanks as training did."""
    sample = X[np.sort(np.random.default_rng(seed).permutation(len(X))[:PARITY_ROWS])]
    rows = sample if split is None else np.vstack([sample, split.X_test])
    return np.vstack([rows, blanked(spec, rows, seed)])


def _metrics(
    spec: ModelSpec, model: Any, y: np.ndarray, oof_proba: np.ndarray, fold_scores: np.ndarray, split: Split | None,
    parity: float, parity_tolerance: float, parity_rows: int,
) -> dict[str, Any]:
    out_of_fold = ranking_metrics(y, oof_proba)
    common = {"metric": spec.metric, "quality_gate": spec.quality_gate, "parity_max_abs_diff": parity,
              "parity_tolerance": parity_tolerance, "parity_rows": parity_rows, "rows_fitted": int(len(y))}
    oof = {"estimate_std": round(float(fold_scores.std()), 5), "out_of_fold": out_of_fold}
    if split is None:
        estimate = metric_value(spec, y, oof_proba)
        return {**common, "evaluated_on": "out_of_fold", "estimate": round(estimate, 5), **oof, "evaluation_rows": int(len(y)), **out_of_fold}
    proba = model.predict_proba(split.X_test)[:, 1]
    estimate = metric_value(spec, split.y_test, proba)
    return {**common, "evaluated_on": "held_out", "estimate": round(estimate, 5), **oof, "evaluation_rows": int(len(split.y_test)),
            **ranking_metrics(split.y_test, proba)}


def _gates(spec: ModelSpec, metrics: dict[str, Any], parity: float, parity_tolerance: float) -> list[str]:
    failures = []
    estimate, where = metrics["estimate"], metrics["evaluated_on"].replace("_", "-")
    if estimate < spec.quality_gate:
        failures.append(
            f"quality gate: {where} {spec.metric} {estimate:.4f} < {spec.quality_gate:.4f} (short by {spec.quality_gate - estimate:.4f})"
        )
    if not parity <= parity_tolerance:
        failures.append(f"ONNX parity: max |onnx - sklearn| probability {parity:.2e} > tolerance {parity_tolerance:.0e}")
    return failures
