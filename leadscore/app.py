"""The Celery app: JSON only, one queue per kind of work, finite result lifetimes."""

from __future__ import annotations

from typing import Any

from celery import Celery
from kombu import Queue

from leadscore import serialization
from leadscore.routes import queues, task_routes
from leadscore.schedule import schedule
from leadscore.settings import Settings, get_settings
from leadscore.worker import metrics


class LeadscoreCelery(Celery):
    """Every task message, however it is sent (``delay``, ``apply_async``, ``send_task``, a chord),
    shows its arguments redacted (``serialization.shown``): Celery's default puts the first 1,024
    characters of their repr in task events, so a conversation's text reached Flower."""

    def send_task(self, name: str, args: Any = None, kwargs: Any = None, **options: Any) -> Any:
        options.setdefault("argsrepr", serialization.shown(args or ()))
        options.setdefault("kwargsrepr", serialization.shown(kwargs or {}))
        return super().send_task(name, args, kwargs, **options)


def create_app(settings: Settings | None = None) -> Celery:
    settings = settings or get_settings()
    serialization.install()
    app = LeadscoreCelery("leadscore", broker=settings.broker_url, backend=settings.result_backend)
    app.conf.update(
        # Pickle over the broker lets whoever can write to Redis run code in a worker.
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_accept_content=["json"],
        task_queues=[Queue(q) for q in queues(settings)],
        task_default_queue=settings.scoring_queue,
        task_routes=task_routes(settings),
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
        beat_scheduler="leadscore.beat:SingleBeatScheduler",
        timezone="UTC",
        enable_utc=True,
        broker_connection_retry_on_startup=True,
        # A worker that dies mid-task (SIGKILL, OOM) must not lose it: acks_late tasks go back
        # on the queue. They are idempotent, so running twice is harmless.
        task_reject_on_worker_lost=True,
        worker_consumer="leadscore.serialization:Consumer",
        worker_hijack_root_logger=False,
    )
    metrics.install(app)
    return app
