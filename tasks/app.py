"""The Celery app: JSON only, one queue per kind of work, finite result lifetimes."""

from __future__ import annotations

from celery import Celery
from kombu import Queue

from beat_schedule import schedule
from ml_core.settings import Settings, get_settings
from tasks import serialization

SCORING_TASKS: tuple[str, ...] = ("leadscore.score_lead", "leadscore.ping")
BATCH_TASKS: tuple[str, ...] = ("leadscore.predict_batch", "leadscore.prewarm_cache")
# The other models' tasks: one lead (with its properties) is interactive, a list of leads is batch.
SCORING_TASKS += ("leadscore.predict_churn", "leadscore.match_properties", "leadscore.recommend_properties", "leadscore.score_lead_profile")
BATCH_TASKS += ("leadscore.predict_churn_batch",)
BATCH_TASKS += ("leadscore.bulk_chunk", "leadscore.bulk_window_done", "leadscore.bulk_resume")
# Model lifecycle: everything that writes the models directory or the outcome store, on one queue.
TRAINING_TASKS = ("leadscore.retrain", "leadscore.retrain_all", "leadscore.record_outcome", "leadscore.outcome_status",
                   "leadscore.set_rollout", "leadscore.set_challenger", "leadscore.promote", "leadscore.rollback", "leadscore.drift_check")
DEEP_TASKS = ("leadscore.deep_score", "leadscore.explain_lead", "leadscore.record_handoff")


def create_app(settings: Settings | None = None) -> Celery:
    settings = settings or get_settings()
    serialization.install()
    app = Celery("leadscore", broker=settings.broker_url, backend=settings.result_backend)
    app.conf.update(
        # Pickle over the broker lets whoever can write to Redis run code in a worker.
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_accept_content=["json"],
        task_queues=[Queue(q) for q in (settings.scoring_queue, settings.batch_queue, settings.training_queue, settings.deep_queue)],
        task_default_queue=settings.scoring_queue,
        task_routes={
            **{name: {"queue": settings.scoring_queue} for name in SCORING_TASKS},
            **{name: {"queue": settings.batch_queue} for name in BATCH_TASKS},
            **{name: {"queue": settings.training_queue} for name in TRAINING_TASKS},
            **{name: {"queue": settings.deep_queue} for name in DEEP_TASKS},
        },
        result_expires=settings.result_expires_seconds,
        broker_transport_options={
            "visibility_timeout": settings.visibility_timeout_seconds,
            # kombu sweeps for a dead worker's unacknowledged tasks every interval x throttle
            # seconds (100 s by default); sweep every few seconds instead: it is one ZRANGE.
            "unacked_restore_interval": max(1, min(10, settings.visibility_timeout_seconds // 2)),
            "unacked_restore_throttle": 1,
        },
        result_extended=False,
        task_track_started=False,
        worker_send_task_events=True,
        task_send_sent_event=True,
        beat_schedule=schedule(settings),
        beat_scheduler="tasks.beat:SingleBeatScheduler",
        timezone="UTC",
        enable_utc=True,
        broker_connection_retry_on_startup=True,
        # A worker that dies mid-task (SIGKILL, OOM) must not lose it: acks_late tasks go back
        # on the queue. They are idempotent, so running twice is harmless.
        task_reject_on_worker_lost=True,
        worker_consumer="tasks.serialization:Consumer",
        worker_hijack_root_logger=False,
    )
    return app
