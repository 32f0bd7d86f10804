"""How a challenger takes part in ``score_lead``, and what each score leaves for the lifecycle.

- canary: a lead in the challenger's slice (``Challenger.serves``, by lead id) is scored by the
  challenger; its result names the challenger's version and carries ``rollout: "canary"``. Canary
  results are not cached: the cache serves the published (champion) version only.
- shadow: after the champion's result is made, the challenger scores the same encoded row (one
  ONNX Runtime call, tens of microseconds); both probabilities go to the ``model.shadow`` stream
  from the background writer. The caller only ever sees the champion's result.
- property rankings take part the same way, per model: a lead in a pair model's canary slice has
  all its properties scored by the challenger (the ranking's ``models`` entry says ``rollout:
  "canary"``); a shadow challenger scores the best returned matches, one event per pair.
- every model-scored lead, and every (lead, property) match a ranking returns, leaves a snapshot of
  its features (for ``record_outcome``) and a drift sample, through ``leadscore/worker/snapshots.py``.

Batch and bulk scoring and prewarming always use the champion.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from leadscore.worker.process import snapshots
from leadscore.worker.snapshots import SHADOW_EVENT, Scored
from ml_core.breaker import GuardedScorer
from ml_core.decision import Decision
from ml_core.matching import ScoredPair
from ml_core.onnx_model import OnnxScorer
from ml_core.outcomes import subject
from ml_core.pool import Served
from ml_core.scoring import Scorer, decision_of
from ml_core.timestamps import utc_iso

log = logging.getLogger(__name__)


class CanaryScorer:
    """The challenger for a canary lead; if it fails to predict, the champion answers instead."""

    def __init__(self, challenger: OnnxScorer, champion: GuardedScorer) -> None:
        self.challenger, self.champion = challenger, champion

    # what it serves when the challenger answers (``route`` says when the champion did instead)
    @property
    def name(self) -> str:
        return self.challenger.name

    @property
    def version(self) -> str:
        return self.challenger.version

    @property
    def served_by(self) -> str:
        return self.challenger.served_by

    @property
    def reason(self) -> str:
        return self.challenger.reason

    @property
    def decision(self) -> Decision | None:
        return self.challenger.decision

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return self.route(X)[0]

    def route(self, X: np.ndarray) -> tuple[np.ndarray, Scorer]:
        try:
            return self.challenger.predict_proba(X), self.challenger
        except Exception:  # a failing challenger must never fail a lead
            log.exception("canary challenger %s failed; the champion answers", self.challenger.version)
            return self.champion.route(X)


def choose_scorer(served: Served, lead: Any) -> GuardedScorer | CanaryScorer:
    """One lead's scorer: the champion, or the challenger if the lead is in its canary slice."""
    ((scorer, _),) = split_by_scorer(served, [lead])
    return scorer


def split_by_scorer(served: Served, leads: Sequence[Any]) -> list[tuple[GuardedScorer | CanaryScorer, list[int]]]:
    """The leads' positions by who scores them: the champion, and the challenger for leads in its
    canary slice; one scorer per group, so each group is one vectorized call."""
    champion: list[int] = []
    canary: list[int] = []
    challenger: OnnxScorer | None = None
    for i, lead in enumerate(leads):
        chosen = served.for_lead(lead.get("id") if isinstance(lead, dict) else None)
        if isinstance(chosen, OnnxScorer):
            challenger = chosen
            canary.append(i)
        else:
            champion.append(i)
    groups: list[tuple[GuardedScorer | CanaryScorer, list[int]]] = [(served.scorer, champion)] if champion else []
    if challenger is not None:
        groups.append((CanaryScorer(challenger, served.scorer), canary))
    return groups


def after_scores(served: Served, results: list[dict[str, Any]], rows: np.ndarray, features: list[dict[str, Any]]) -> None:
    """Mark canary results, compare a shadow challenger (one call for all rows), and queue the
    snapshots together; never raises for the callers. ``rows[k]`` is ``results[k]``'s encoded row."""
    for result in results:
        if _in_canary(served, result["model_version"]):
            result["rollout"] = "canary"
    by_model = [k for k, r in enumerate(results) if r["served_by"] == "onnx"]  # rules-served leads tell nothing about a model's traffic
    if not by_model:
        return
    shadow = served.shadow
    shadowed = _shadow_probabilities(shadow, rows[by_model]) if shadow is not None else None
    taken = []
    for j, k in enumerate(by_model):
        r = results[k]
        fields = None
        if shadow is not None and shadowed is not None:
            fields = _shadow_event(served, shadow, str(r["lead_id"]), r["model_version"], r["probability"], shadowed[j])
        taken.append(Scored(r["model"], str(r["lead_id"]), r["model_version"], r["probability"], features[k], fields))
    snapshots().submit_many(taken)


def after_ranking(served: Sequence[Served], result: dict[str, Any], pairs: list[ScoredPair]) -> None:
    """For a property ranking: mark the models a canary challenger served, and for the best returned
    matches compare a shadow challenger and queue the snapshots (outcomes of pair models train on them)."""
    for s in served:
        entry = result["models"].get(s.spec.name)
        if entry is not None and _in_canary(s, entry["model_version"]):
            entry["rollout"] = "canary"
    for s in served:
        mine = [p for p in pairs if p.model == s.spec.name]
        shadow = s.shadow
        shadowed = _shadow_probabilities(shadow, np.stack([p.row for p in mine])) if shadow is not None and mine else None
        taken = []
        for i, p in enumerate(mine):
            fields = None
            if shadow is not None and shadowed is not None:
                fields = _shadow_event(s, shadow, p.lead_id, p.version, p.probability, shadowed[i]) | {"property_id": p.property_id}
            taken.append(Scored(p.model, subject(p.lead_id, p.property_id), p.version, p.probability, p.features, fields))
        snapshots().submit_many(taken)


def _in_canary(served: Served, version: str) -> bool:
    c = served.challenger
    return c is not None and c.state.mode == "canary" and version == c.state.version


def _shadow_probabilities(shadow: OnnxScorer, X: np.ndarray) -> np.ndarray:
    try:
        return shadow.predict_proba(X)
    except Exception:  # the shadow never affects the lead's result
        log.exception("shadow challenger %s failed", shadow.version)
        return np.full(len(X), np.nan)


def _shadow_event(served: Served, shadow: OnnxScorer, lead_id: str, version: str, probability: float, p: float) -> dict[str, str]:
    """Fields of a ``model.shadow`` event: champion and shadow challenger on the same lead (or pair)."""
    p = float(p)
    return {
        "schema": "1", "type": SHADOW_EVENT, "lead_id": lead_id, "model": served.spec.name,
        "champion_version": version, "champion_probability": repr(probability),
        "challenger_version": shadow.version, "challenger_probability": repr(round(p, 6)),
        "challenger_label": decision_of(shadow, served.spec).label(round(p * 100.0, 2)),
        "champion_label": decision_of(served.scorer.primary, served.spec).label(round(probability * 100.0, 2)),
        "ts": utc_iso(),
    }
