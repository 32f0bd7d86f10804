"""Celery Beat's schedule, as data. All times are UTC (the app sets ``timezone="UTC"``)."""

from __future__ import annotations

from typing import Any

from celery.schedules import crontab

from leadscore.settings import Settings


def when(spec: str) -> crontab | float:
    """A schedule setting: seconds (``"30"``) or a five-field crontab in UTC (``"0 23 * * sun"``)."""
    try:
        return float(spec)
    except ValueError:
        minute, hour, day_of_month, month_of_year, day_of_week = spec.split()
        return crontab(minute=minute, hour=hour, day_of_month=day_of_month, month_of_year=month_of_year, day_of_week=day_of_week)


def schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    prewarm_seconds = min(60.0, settings.cache_ttl_seconds / 2)
    return {
        # Every minute by default, a real task through the scoring queue: a worker that silently
        # stopped consuming (a known failure after Redis reconnects) shows up as missing pongs.
        "ping-scoring-queue": {
            "task": "leadscore.ping",
            "schedule": settings.health_ping_seconds,
            "options": {"expires": settings.health_ping_seconds},
        },
        # Every minute (every half cache TTL if that is shorter), rescore the recently active leads
        # into the prediction cache, so hot leads never find their entry expired. A run not started
        # before the next one is due is dropped: the next one does the same work.
        "prewarm-cache": {
            "task": "leadscore.prewarm_cache",
            "schedule": prewarm_seconds,
            "options": {"expires": prewarm_seconds},
        },
        # Weekly, Sunday 23:00 UTC (retrain_schedule): one gated retrain per model, from the week's
        # outcomes, on the training queue. Winners become challengers; nothing is promoted unattended.
        "retrain-weekly": {
            "task": "leadscore.retrain_all",
            "schedule": when(settings.retrain_schedule),
        },
        # Daily, 01:30 UTC (drift_schedule): PSI of every feature and of the scores, recent traffic
        # against the champion's training data; a model.drift event above drift_psi_threshold.
        "drift-check-daily": {
            "task": "leadscore.drift_check",
            "schedule": when(settings.drift_schedule),
        },
    }
