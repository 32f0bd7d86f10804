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
    chosen = served.for_lead(lead.get("id") if isinstance(lead, dict) else None)
    return CanaryScorer(chosen, served.scorer) if isinstance(chosen, OnnxScorer) else served.scorer


def after_score(served: Served, result: dict[str, Any], row: np.ndarray, features: dict[str, Any]) -> None:
    """Mark a canary result, compare a shadow challenger, and queue the snapshot; never raises for the caller."""
    if _in_canary(served, result["model_version"]):
        result["rollout"] = "canary"
    if result["served_by"] != "onnx":
        return  # rules-served leads tell nothing about a model's traffic
    shadow = served.shadow
    shadow_fields = None
    if shadow is not None:
        (p,) = _shadow_probabilities(shadow, row.reshape(1, -1))
        shadow_fields = _shadow_event(served, shadow, str(result["lead_id"]), result["model_version"], result["probability"], p)
    snapshots().submit(Scored(result["model"], str(result["lead_id"]), result["model_version"], result["probability"], features, shadow_fields))


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
        for i, p in enumerate(mine):
            fields = None
            if shadow is not None and shadowed is not None:
                fields = _shadow_event(s, shadow, p.lead_id, p.version, p.probability, shadowed[i]) | {"property_id": p.property_id}
            snapshots().submit(Scored(p.model, subject(p.lead_id, p.property_id), p.version, p.probability, p.features, fields))


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
