"""Every task of ours and the kind of queue it runs on: the one table the app routes from.

The kinds map to queue names through the settings (``scoring_queue`` ...), so a deployment can
rename queues without touching this table. tests/unit/test_deployment.py fails when a task has
no route or a route names no task.
"""

from __future__ import annotations

from enum import StrEnum

from leadscore.settings import Settings


class QueueKind(StrEnum):
    SCORING = "scoring"
    """One lead (with its properties): interactive, short, prefetched."""
    BATCH = "batch"
    """Lists of leads and bulk chunks: long, one at a time per child."""
    TRAINING = "training"
    """Everything that writes the state store: outcomes, versions, rollouts."""
    DEEP = "deep"
    """The deep tier: explanations and escalated leads."""


ROUTES: dict[str, QueueKind] = {
    "leadscore.ping": QueueKind.SCORING,
    "leadscore.score_lead": QueueKind.SCORING,
    "leadscore.predict_churn": QueueKind.SCORING,
    "leadscore.match_properties": QueueKind.SCORING,
    "leadscore.recommend_properties": QueueKind.SCORING,
    "leadscore.score_lead_profile": QueueKind.SCORING,
    "leadscore.predict_batch": QueueKind.BATCH,
    "leadscore.prewarm_cache": QueueKind.BATCH,
    "leadscore.predict_churn_batch": QueueKind.BATCH,
    "leadscore.bulk_chunk": QueueKind.BATCH,
    "leadscore.bulk_window_done": QueueKind.BATCH,
    "leadscore.bulk_resume": QueueKind.BATCH,
    "leadscore.retrain": QueueKind.TRAINING,
    "leadscore.retrain_all": QueueKind.TRAINING,
    "leadscore.record_outcome": QueueKind.TRAINING,
    "leadscore.outcome_status": QueueKind.TRAINING,
    "leadscore.set_rollout": QueueKind.TRAINING,
    "leadscore.set_challenger": QueueKind.TRAINING,
    "leadscore.promote": QueueKind.TRAINING,
    "leadscore.rollback": QueueKind.TRAINING,
    "leadscore.drift_check": QueueKind.TRAINING,
    "leadscore.deep_score": QueueKind.DEEP,
    "leadscore.explain_lead": QueueKind.DEEP,
    "leadscore.record_handoff": QueueKind.DEEP,
}


def queue_name(kind: QueueKind, settings: Settings) -> str:
    return {
        QueueKind.SCORING: settings.scoring_queue,
        QueueKind.BATCH: settings.batch_queue,
        QueueKind.TRAINING: settings.training_queue,
        QueueKind.DEEP: settings.deep_queue,
    }[kind]


def task_routes(settings: Settings) -> dict[str, dict[str, str]]:
    return {task: {"queue": queue_name(kind, settings)} for task, kind in ROUTES.items()}


def queues(settings: Settings) -> list[str]:
    """Every queue name, in ``QueueKind`` order (the status command's order too)."""
    return [queue_name(kind, settings) for kind in QueueKind]
