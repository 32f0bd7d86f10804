"""Churn tasks: ``score_lead`` and ``predict_batch`` with the churn model, by name.

They call the generic tasks' bodies in-process (not as subtasks), so whatever serves
``score_lead`` (validation, fallback, and anything added around it) serves churn the same way.
"""

from __future__ import annotations

from typing import Any

from celery import shared_task

from leadscore.tasks.scoring import predict_batch, score_lead
from ml_core.errors import LeadscoreError

CHURN_MODEL = "churn_predictor"


@shared_task(name="leadscore.predict_churn", acks_late=True, throws=(LeadscoreError,))
def predict_churn(lead: dict[str, Any]) -> dict[str, Any]:
    """The risk (0-100) that an engaged lead goes silent or drops out; ``label`` hot means at risk now."""
    return score_lead(lead, model=CHURN_MODEL)


@shared_task(name="leadscore.predict_churn_batch", acks_late=True, throws=(LeadscoreError,))
def predict_churn_batch(leads: list[Any]) -> list[dict[str, Any]]:
    """Churn risk for a list of leads in one vectorized call; invalid leads get their own error entry."""
    return predict_batch(leads, model=CHURN_MODEL)
