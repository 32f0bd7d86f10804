"""Retraining: recorded outcomes (plus the base data set while they are few) -> a gated challenger.

The training set: every recorded outcome that has the features its lead was scored with
(``ml_core.outcomes``). While there are fewer than ``min_outcomes`` of them, the base data set
(``base_rows`` synthetic rows, or the table at ``base_data``) is added, so a handful of labels
cannot produce a model fitted on noise; from ``min_outcomes`` on, outcomes alone are the truth.

The candidate is trained like a first version (``ml_core.training``: out-of-fold evaluation, the
chosen family refitted on every row). It is judged on rows no model was fitted on: its own
out-of-fold probabilities (each row predicted by a fold model that never saw it), against the
champion's served scores on the same rows, which the champion never saw either (outcomes of leads
it scored, and base rows drawn with another seed than first training's). With ``holdout`` > 0 a
share of the rows is set aside instead and both served artifacts are scored on it.

Gates, all evaluated, all reported with their numbers, all required:

    quality_gate   the candidate's out-of-fold (or held-out) metric >= the spec's ``quality_gate``
    onnx_parity    max |ONNX - native| probability on the parity rows <= the parity tolerance
    champion       the same metric, on the same rows, >= champion's - ``champion_tolerance``

A model that passes is registered (staged, then renamed: a retrain that dies midway leaves no
version) as the challenger, or as champion when the model has none. One that fails is not
registered; the refusal, with the numbers, goes to the model's history and to the caller.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ml_core import decision, derived_rules, drift, report, rollout, synthetic
from ml_core.dataset import read_training_table, training_set
from ml_core.errors import LeadscoreError, ModelNotFoundError, RegistrationRefusedError
from ml_core.featurizers import featurize_table
from ml_core.identity import ONNX_FILE
from ml_core.onnx_model import OnnxScorer
from ml_core.optimize import Optimized, Tolerance, optimize
from ml_core.outcomes import OutcomeStore
from ml_core.parity import PARITY_TOLERANCE
from ml_core.registry import Registry
from ml_core.training import DEFAULT_TIME_BUDGET, TrainedModel, fit, metric_value

FULL_ONNX_FILE = "model.full.onnx"
PROFILE_FILE = drift.PROFILE_FILE


@dataclass(frozen=True)
class RetrainPolicy:
    min_outcomes: int = 2000
    base_rows: int = 20_000
    base_data: Path | None = None
    folds: int = 5
    repeats: int | None = None
    """K-fold repeats; None: ``ml_core.training.repeats_for`` the table's size."""
    time_budget: float = DEFAULT_TIME_BUDGET
    seed: int = 42
    holdout: float = 0.0
    parity_tolerance: float = PARITY_TOLERANCE
    champion_tolerance: float = 0.005
    optimize: Tolerance = field(default_factory=Tolerance)
    challenger_mode: rollout.Mode = "shadow"


def training_data(spec: Any, store: OutcomeStore, policy: RetrainPolicy) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The table to train on and what it is made of (the rule in this module's docstring)."""
    outcomes = store.training_frame(spec.name, spec.target)
    counts = store.counts(spec.name)
    composition: dict[str, Any] = {"outcomes": len(outcomes), "outcomes_without_features": counts["without_features"]}
    if len(outcomes) >= policy.min_outcomes:
        return outcomes, {**composition, "base": 0, "rule": f"outcomes only (>= {policy.min_outcomes})"}
    if policy.base_data is not None:
        base, source = read_training_table(spec, Path(policy.base_data))
    else:
        # another seed than first training's: rows the champion never saw, so the comparison is fair
        seed = policy.seed + 1
        base, source = synthetic.generate(spec.name, policy.base_rows, seed), f"synthetic(rows={policy.base_rows}, seed={seed})"
    base = featurize_table(spec, base)
    keep = [c for c in base.columns if c in spec.feature_names or c == spec.target]
    frame = pd.concat([outcomes.drop(columns="id", errors="ignore"), base[keep]], ignore_index=True)
    return frame, {**composition, "base": len(base), "base_source": source, "rule": f"outcomes + base (< {policy.min_outcomes} outcomes)"}


def retrain(registry: Registry, store: OutcomeStore, name: str, policy: RetrainPolicy) -> dict[str, Any]:
    """Fit, gate, register. Returns ``{"status": "registered", "role": ..., "version", "gates", ...}``;
    raises ``RegistrationRefusedError`` (every failed gate with its numbers) when a gate fails."""
    spec = registry.spec(name)
    frame, composition = training_data(spec, store, policy)
    source = f"{composition['rule']}: {composition['outcomes']} outcomes + {composition['base']} base rows"
    trained = fit(spec, training_set(spec, frame, source), seed=policy.seed, folds=policy.folds, repeats=policy.repeats,
                  holdout=policy.holdout, time_budget=policy.time_budget, parity_tolerance=policy.parity_tolerance)
    optimized = optimize(trained, policy.optimize, policy.seed)
    X, y, candidate_p = judged_rows(trained, optimized)
    candidate = metric_value(spec, y, candidate_p)
    champion_version, champion_p = _champion_on(registry, name, X)
    gates, comparison = _gates(spec, trained, candidate, y, champion_version, champion_p, policy)
    failures = [g["detail"] for g in gates if not g["passed"]]
    if failures:
        rollout.record(registry, name, "retrain_refused", gates=gates, training_set=composition)
        raise RegistrationRefusedError(name, failures)
    headline = {"family": trained.family, "data": source, **trained.metrics, "selection": trained.selection, "served_metric": round(candidate, 5),
                "gates": gates, "comparison": comparison, "optimization": optimized.card, "champion": champion_version}
    files, extra = version_files(trained, optimized, headline, champion_p)
    version = registry.register(
        dataclasses.replace(trained, onnx=optimized.onnx, model=optimized.model),
        champion=champion_version is None,
        extra_files=files,
        card_extra={**extra, "gates": gates, "comparison": comparison, "training_set": composition, "served_metric": round(candidate, 5)},
    )
    rollout.record(registry, name, "retrained", version=version, gates=gates, training_set=composition)
    if champion_version is None:
        role = "champion"
        rollout.record(registry, name, "promoted", version=version, previous=None, mode="first version")
    else:
        role = "challenger"
        rollout.set_challenger(registry, name, version, policy.challenger_mode)
    return {"status": "registered", "model": name, "version": version, "role": role, "gates": gates,
            "training_set": composition, "optimization": optimized.card, "comparison": comparison}


def version_files(
    trained: TrainedModel, optimized: Optimized | None, headline: dict[str, Any], champion_p: np.ndarray | None
) -> tuple[Callable[[str], dict[str, bytes]], dict[str, Any]]:
    """Files registered beside the model (drift profile, report, the full artifact when an optimized
    one serves), rendered for the version the registry gives them (the report names it), and the
    card entries that describe them: the rules derived from every row
    (``ml_core.derived_rules``: what serves when the model cannot, if the spec has no ``[fallback]``)
    and the escalation threshold and band cut-offs resolved on training's out-of-fold scores (``decision``)."""
    served_model = optimized.model if optimized else trained.model
    X, y, p = judged_rows(trained, optimized)
    oof_y, oof_p = trained.oof_y, trained.oof_proba
    resolved = decision.resolve(trained.spec, oof_y, oof_p, f"out of fold: {len(oof_y)} rows ({trained.family})")
    files = {PROFILE_FILE: json.dumps(drift.profile(trained.spec, trained.X, p)).encode()}
    extra: dict[str, Any] = {"report": list(report.FILES), "profile": PROFILE_FILE, "decision": resolved}
    extra[derived_rules.CARD_KEY] = derived_rules.derive(trained.spec, trained.X, trained.y)
    if optimized is not None:
        extra["optimization"] = optimized.card
        if optimized.served:
            files[FULL_ONNX_FILE] = trained.onnx
            extra["served_file"] = f"{ONNX_FILE} ({optimized.kind}); full model in {FULL_ONNX_FILE}"

    def files_for(version: str) -> dict[str, bytes]:
        rendered = report.render(trained.spec, served_model, X, y, p, {**headline, "version": version}, champion_p,
                                 out_of_fold=(oof_y, oof_p, resolved))
        return {**files, **rendered}

    return files_for, extra


def judged_rows(trained: TrainedModel, optimized: Optimized | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows no candidate model was fitted on, their labels and the candidate's probabilities there:
    the held-out rows scored by the artifact that would serve, else every row out of fold."""
    if trained.holdout is not None:
        served = optimized.onnx if optimized else trained.onnx
        X, y = trained.holdout.X_test, trained.holdout.y_test
        return X, y, OnnxScorer(trained.spec.name, "candidate", served).predict_proba(X.astype(np.float32))
    return trained.X, trained.oof_y, trained.oof_proba


def _champion_on(registry: Registry, name: str, X: np.ndarray) -> tuple[str | None, np.ndarray | None]:
    """The champion's served probabilities on X; ``(None, None)`` when there is none."""
    try:
        artifact = registry.load(name)
    except ModelNotFoundError:
        return None, None
    except LeadscoreError:
        # a champion that no longer loads cannot be compared: the gate says so and passes
        return registry.champion(name), None
    return artifact.version, OnnxScorer(name, artifact.version, artifact.onnx).predict_proba(X.astype(np.float32))


def _gates(
    spec: Any, trained: TrainedModel, candidate: float, y: np.ndarray, champion: str | None, champion_p: np.ndarray | None,
    policy: RetrainPolicy,
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    m = trained.metrics
    where = m["evaluated_on"].replace("_", "-")
    gates = [
        {"name": "quality_gate", "passed": candidate >= spec.quality_gate, "value": round(candidate, 5), "threshold": spec.quality_gate,
         "detail": f"quality gate: {where} {spec.metric} {candidate:.4f} {'>=' if candidate >= spec.quality_gate else '<'} {spec.quality_gate:.4f}"},
        {"name": "onnx_parity", "passed": m["parity_max_abs_diff"] <= policy.parity_tolerance, "value": m["parity_max_abs_diff"],
         "threshold": policy.parity_tolerance,
         "detail": f"ONNX parity: max |onnx - native| {m['parity_max_abs_diff']:.2e} (tolerance {policy.parity_tolerance:.0e})"},
    ]
    if champion is None:
        return gates + [{"name": "champion", "passed": True, "value": None, "threshold": None, "detail": "champion: none registered yet"}], None
    if champion_p is None:
        return gates + [{"name": "champion", "passed": True, "value": None, "threshold": None,
                         "detail": f"champion: {champion} does not load, nothing to compare with"}], None
    theirs = metric_value(spec, y, champion_p)
    floor = theirs - policy.champion_tolerance
    passed = candidate >= floor
    comparison = {"champion": champion, "champion_metric": round(theirs, 5), "candidate": round(candidate, 5),
                  "change": round(candidate - theirs, 5), "tolerance": policy.champion_tolerance, "rows": int(len(y)), "metric": spec.metric,
                  "candidate_scored": where}
    detail = (f"champion: {spec.metric} {candidate:.4f} ({where}) against champion {champion}'s {theirs:.4f} on the same {len(y)} rows "
              f"(change {candidate - theirs:+.4f}, {'within' if passed else 'beyond'} tolerance {policy.champion_tolerance})")
    return gates + [{"name": "champion", "passed": passed, "value": round(candidate, 5), "threshold": round(floor, 5), "detail": detail}], comparison
