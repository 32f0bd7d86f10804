"""The daily drift check: the champion's training data against the recent scored traffic.

For each model with a champion: its ``profile.json`` (``ml_core.drift``, checksummed in the card)
against the drift sample (``leadscore/worker/snapshots.py``: the last ``drift_sample_size`` leads the
model scored, features and probability, those the champion scored only). PSI per feature and of the scores; above
``drift_psi_threshold`` (or a feature's share of blanks up by more than ``drift_missing_margin``) a ``model.drift`` event,
and with ``drift_retrain`` a ``retrain`` of that model. The same goes for the realized escalation rate and band shares of that sample when
they leave the card's values by more than ``drift_rate_margin``. Too little traffic (< ``drift_min_samples``) decides nothing and says so. A model that
cannot be checked (a broken spec, say) gets ``{"error": ...}`` and the others are still checked.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import numpy as np
from celery import current_app, shared_task

from leadscore.settings import get_settings
from leadscore.stores.event_types import EventType
from leadscore.stores.state import registry as state_registry
from leadscore.tasks.retrain import RETRAIN_TASK
from leadscore.worker.process import publish_model_event, snapshots
from ml_core import drift
from ml_core.errors import ArtifactIntegrityError, LeadscoreError, ModelNotFoundError
from ml_core.features import encode_leads
from ml_core.identifiers import model_names
from ml_core.registry import Registry
from ml_core.spec import available_models

log = logging.getLogger(__name__)


@shared_task(name="leadscore.drift_check", acks_late=True, throws=(LeadscoreError,))
def drift_check(models: list[str] | None = None) -> dict[str, Any]:
    """PSI per feature and of the score distribution for ``models`` (default: every model)."""
    models = model_names(models)
    settings = get_settings()
    registry = state_registry(settings)
    report: dict[str, Any] = {}
    for name in models or available_models(settings.models_dir):
        try:
            report[name] = check_model(registry, name)
        except LeadscoreError as exc:  # a broken spec or profile is this model's problem, not the others'
            log.error("drift check of model %s failed: %s", name, exc)
            report[name] = {"error": f"{exc.__class__.__name__}: {exc}"}
    return report


def check_model(registry: Registry, name: str) -> dict[str, Any]:
    settings = get_settings()
    try:
        version = registry.champion(name)
        reference = json.loads(registry.verified_file(name, version, drift.PROFILE_FILE))
    except ModelNotFoundError:
        return {"skipped": "no champion"}
    except ArtifactIntegrityError as exc:
        return {"skipped": f"no usable drift profile: {exc}"}
    spec = registry.spec(name)
    sample = snapshots().drift_sample(name, version)
    if len(sample) < settings.drift_min_samples:
        return {"version": version, "skipped": f"{len(sample)} recent leads scored by {version} < drift_min_samples {settings.drift_min_samples}"}
    encoded = encode_leads(spec, [{"id": str(i), **f} for i, (f, _) in enumerate(sample)], "ignore")
    proba = np.array([sample[i][1] for i in encoded.index], dtype=np.float64)
    checked = drift.check(spec, reference, encoded.X, proba, settings.drift_psi_threshold, settings.drift_missing_margin)
    result = {"version": version, "sample": len(sample), **checked}
    card_decision = registry.card(name, version).get("decision")
    if card_decision:  # versions registered before cards held their escalation and band shares have none to compare
        all_proba = np.array([p for _, p in sample], dtype=np.float64)
        result.update(drift.check_rates(card_decision, all_proba, settings.drift_rate_margin))
        result["drifted"] = result["drifted"] or bool(result["drifted_rates"])
    if result["drifted"]:
        worst = sorted(result["features"].items(), key=lambda kv: -kv[1])[:3]
        detail = f"score PSI {result['score']}, worst features {worst}, threshold {result['threshold']}"
        if result["missing_drifted"]:
            rises = {n: result["missing"][n] for n in result["missing_drifted"]}
            detail += f"; share of blanks rose beyond {result['missing_margin']}: {rises}"
        if result.get("drifted_rates"):
            moved = {name: result["rates"][name] for name in result["drifted_rates"]}
            detail += f"; shares off their card values by more than {result['margin']}: {moved}"
        publish_model_event(EventType.MODEL_DRIFT, name, version, detail)
        if settings.drift_retrain:
            current_app.send_task(RETRAIN_TASK, args=[name], queue=settings.training_queue)
            result["retrain_sent"] = True
    return result
