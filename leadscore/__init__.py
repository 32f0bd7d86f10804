"""leadscore's Celery side: ``celery -A leadscore worker`` finds ``leadscore.app``.

Web services call ``score_lead.delay(lead)`` and ``predict_batch.delay(leads)``.
Nightly rescoring calls ``bulk_score(leads_or_path)`` (a client-side function, not a task).

Importing ``leadscore`` creates the app and nothing else: each task's module is imported when its
name is first used (``from leadscore import score_lead``), so a web service loads only what it calls,
never the training stack. Workers import every task module at start (``app.conf.include``).
"""

from __future__ import annotations

import importlib
from typing import Any

from leadscore.app import create_app

app = create_app()

_HOME = {
    "leadscore.tasks.scoring": ("ping", "predict_batch", "score_lead"),
    "leadscore.tasks.deep": ("deep_score", "explain_lead", "record_handoff"),
    "leadscore.tasks.prewarm": ("prewarm_cache",),
    "leadscore.tasks.churn": ("predict_churn", "predict_churn_batch"),
    "leadscore.tasks.matching": ("match_properties", "recommend_properties"),
    "leadscore.tasks.lead_profile": ("score_lead_profile",),
    "leadscore.tasks.bulk": ("bulk_chunk", "bulk_resume", "bulk_window_done"),
    "leadscore.client.bulk": ("BulkJob", "bulk_score"),
    "leadscore.tasks.outcomes": ("outcome_status", "record_outcome"),
    "leadscore.tasks.retrain": ("retrain", "retrain_all"),
    "leadscore.tasks.rollout": ("promote", "rollback", "set_challenger", "set_rollout"),
    "leadscore.tasks.drift": ("drift_check",),
}
_MODULE_OF = {name: module for module, names in _HOME.items() for name in names}
app.conf.include = [module for module in _HOME if module != "leadscore.client.bulk"]

__all__ = ["app", *_MODULE_OF]


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'leadscore' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
