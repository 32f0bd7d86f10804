"""How a challenger takes part in ``score_lead``, and what each score leaves for the lifecycle.

- canary: a lead in the challenger's slice (``Challenger.serves``, by lead id) is scored by the
  challenger; its result names the challenger's version and carries ``rollout: "canary"``. Canary
  results are not cached: the cache serves the published (champion) version only.
- shadow: after the champion's result is made, the challenger scores the same encoded row (one
  ONNX Runtime call, tens of microseconds); both probabilities go to the ``model.shadow`` stream
  from the background writer. The caller only ever sees the champion's result.
- every model-scored lead, and every (lead, property) match a ranking returns, leaves a snapshot of
  its features (for ``record_outcome``) and a drift sample, through ``tasks/snapshots.py``.

Batch and bulk scoring and prewarming always use the champion.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any

import numpy as np

from ml_core.breaker import GuardedScorer
from ml_core.matching import ScoredPair
from ml_core.onnx_model import OnnxScorer
from ml_core.outcomes import subject
from ml_core.pool import Served
from ml_core.settings import get_settings
from tasks.snapshots import SHADOW_EVENT, Scored
from tasks.worker import snapshots

log = logging.getLogger(__name__)


class CanaryScorer:
    """The challenger for a canary lead; if it fails to predict, the champion answers instead."""

    def __init__(self, challenger: OnnxScorer, champion: GuardedScorer) -> None:
        self.challenger, self.champion = challenger, champion

    def route(self, X: np.ndarray) -> tuple[np.ndarray, Any]:
        try:
            return self.challenger.predict_proba(X), self.challenger
        except Exception:  # noqa: BLE001 - a failing challenger must never fail a lead
            log.exception("canary challenger %s failed; the champion answers", self.challenger.version)
            return self.champion.route(X)


def choose_scorer(served: Served, lead: Any) -> GuardedScorer | CanaryScorer:
    chosen = served.for_lead(lead.get("id") if isinstance(lead, dict) else None)
    return served.scorer if chosen is served.scorer else CanaryScorer(chosen, served.scorer)


def after_score(served: Served, result: dict[str, Any], row: np.ndarray, features: dict[str, Any]) -> None:
    """Mark a canary result, compare a shadow challenger, and queue the snapshot; never raises for the caller."""
    c = served.challenger
    if c is not None and c.state.mode == "canary" and result["model_version"] == c.state.version:
        result["rollout"] = "canary"
    if result["served_by"] != "onnx":
        return  # rules-served leads tell nothing about a model's traffic
    shadow_fields = None
    shadow = served.shadow
    if shadow is not None:
        try:
            p = float(shadow.predict_proba(row.reshape(1, -1))[0])
        except Exception:  # noqa: BLE001 - the shadow never affects the lead's result
            log.exception("shadow challenger %s failed", shadow.version)
            p = float("nan")
        shadow_fields = {
            "schema": "1", "type": SHADOW_EVENT, "lead_id": str(result["lead_id"]), "model": result["model"],
            "champion_version": result["model_version"], "champion_probability": repr(result["probability"]),
            "challenger_version": shadow.version, "challenger_probability": repr(round(p, 6)),
            "challenger_label": served.spec.bands.label(round(p * 100.0, 2)), "champion_label": result["label"],
            "ts": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
        }
    snapshots().submit(Scored(result["model"], str(result["lead_id"]), result["model_version"], result["probability"], features, shadow_fields))


def after_ranking(pairs: list[ScoredPair]) -> None:
    """Queue a snapshot of the best returned (lead, property) matches, for outcomes of pair models."""
    keep = get_settings().snapshot_ranked_pairs
    for p in pairs:
        if p.rank <= keep:
            snapshots().submit(Scored(p.model, subject(p.lead_id, p.property_id), p.version, p.probability, p.features))
