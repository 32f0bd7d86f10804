"""leadscore's Celery side: ``celery -A tasks worker`` finds ``tasks.app``.

Web services call ``score_lead.delay(lead)`` and ``predict_batch.delay(leads)``.
Nightly rescoring calls ``bulk_score(leads_or_path)`` (a client-side function, not a task).

Importing ``tasks`` creates the app and nothing else: each task's module is imported when its
name is first used (``from tasks import score_lead``), so a web service loads only what it calls,
never the training stack. Workers import every task module at start (``app.conf.include``).
"""

from __future__ import annotations

import importlib
from typing import Any

from tasks.app import create_app

app = create_app()

_HOME = {
    "tasks.scoring": ("ping", "predict_batch", "score_lead"),
    "tasks.deep": ("deep_score", "explain_lead", "record_handoff"),
    "tasks.prewarm": ("prewarm_cache",),
    "tasks.churn": ("predict_churn", "predict_churn_batch"),
    "tasks.matching": ("match_properties", "recommend_properties"),
    "tasks.profile": ("score_lead_profile",),
    "tasks.bulk": ("bulk_chunk", "bulk_resume", "bulk_window_done"),
    "tasks.bulk_client": ("BulkJob", "bulk_score"),
    "tasks.outcomes": ("outcome_status", "record_outcome"),
    "tasks.retrain": ("retrain", "retrain_all"),
    "tasks.rollout": ("promote", "rollback", "set_challenger", "set_rollout"),
    "tasks.drift": ("drift_check",),
}
_MODULE_OF = {name: module for module, names in _HOME.items() for name in names}
app.conf.include = [module for module in _HOME if module != "tasks.bulk_client"]

__all__ = ["app", *_MODULE_OF]


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'tasks' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
