"""Cache prewarming: rescore the recently active leads so hot leads stay cached.

Beat runs ``prewarm_cache`` every minute (``leadscore/schedule.py``), more often than entries expire
(``cache_ttl_seconds``, 300 s by default), so a lead that keeps being looked up never finds its
entry gone; a worker child that starts serving a new version asks for one at once, so hot leads
are cached for the new version before clients ask. Leads come from ``RecentLeads`` (ids and
feature values of leads scored or looked up within ``recent_leads_window_seconds``), are scored
in one vectorized pass, and written in pipelined chunks. It publishes no events: nobody asked
for these scores.
"""

from __future__ import annotations

import functools
from typing import Any

import redis
from celery import shared_task

from leadscore.settings import get_settings
from leadscore.stores.cache import PredictionCache
from leadscore.worker.process import model_pool, side_effects
from ml_core.cache_entry import cacheable, feature_digest
from ml_core.errors import LeadscoreError
from ml_core.features import encode_leads
from ml_core.identifiers import model_names
from ml_core.scoring import score_encoded
from ml_core.spec import available_models

_CHUNK = 500


@shared_task(name="leadscore.prewarm_cache", acks_late=True, throws=(LeadscoreError,))
def prewarm_cache(models: list[str] | None = None) -> dict[str, Any]:
    """Rescore recently active leads of ``models`` (default: every spec) under the version served now."""
    models = model_names(models)
    settings = get_settings()
    effects = side_effects()
    report: dict[str, Any] = {}
    for name in models or available_models(settings.models_dir):
        try:
            served = model_pool().get(name)
        except LeadscoreError as exc:  # a broken spec stops this model's prewarm, not the others'
            report[name] = {"error": f"{exc.__class__.__name__}: {exc}"}
            continue
        if served.scorer.served_by != "onnx":
            report[name] = {"skipped": "served by the rule-based fallback"}
            continue
        version = served.scorer.version
        effects.cache.announce_version(name, version)
        active = effects.recent.active(name)
        # "ignore": a lead recorded under an older spec may carry a feature this one dropped
        encoded = encode_leads(served.spec, [{"id": lead_id, **features} for lead_id, features in active], "ignore")
        results = score_encoded(served.spec, served.scorer, encoded, settings.default_confidence_threshold)
        entries: dict[str, dict[str, Any]] = {}
        for k, i in enumerate(encoded.index):
            if cacheable(results[i], version):  # the model may fail mid-prewarm: its rules scores are not the champion's
                entries.setdefault(feature_digest(served.spec.sha256, encoded.X[k]), results[i])
        items = list(entries.items())
        write = functools.partial(_write_entries, cache=effects.cache, model=name, version=version, items=items)
        report[name] = {
            "version": version,
            "leads": len(active),
            "invalid": len(encoded.errors),
            "entries_written": effects.cache.store.call(write) if items else 0,
        }
    return report


def _write_entries(r: redis.Redis, *, cache: PredictionCache, model: str, version: str, items: list[tuple[str, dict[str, Any]]]) -> int:
    for start in range(0, len(items), _CHUNK):
        pipe = r.pipeline(transaction=False)
        for digest, result in items[start : start + _CHUNK]:
            cache.stage_entry(pipe, model, version, digest, result)
        pipe.execute()
    return len(items)
