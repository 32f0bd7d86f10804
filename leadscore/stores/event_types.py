"""Every event type leadscore publishes, one Redis stream each (``leadscore:events:<type>``).

Apart from ``stores/events.py`` so the command line can list them without importing Redis.
"""

from __future__ import annotations

from enum import StrEnum


class EventType(StrEnum):
    """Every event type, one stream each (``leadscore:events:<type>``)."""

    LEAD_SCORED = "lead.scored"
    LEAD_ESCALATED = "lead.escalated"
    LEAD_CACHE_HIT = "lead.cache_hit"
    LEAD_HANDOFF = "lead.handoff"
    MODEL_BREAKER = "model.breaker"
    MODEL_PROMOTED = "model.promoted"
    MODEL_ROLLED_BACK = "model.rolled_back"
    MODEL_ROLLOUT = "model.rollout"
    MODEL_RETRAINED = "model.retrained"
    MODEL_RETRAIN_REFUSED = "model.retrain_refused"
    MODEL_RELOADED = "model.reloaded"
    MODEL_RELOAD_FAILED = "model.reload_failed"
    MODEL_CHALLENGER_LOADED = "model.challenger_loaded"
    MODEL_DRIFT = "model.drift"
    MODEL_SHADOW = "model.shadow"
