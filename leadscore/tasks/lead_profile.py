"""``score_lead_profile``: every model's view of one lead, in one task.

The models run in-process, one after the other, each vectorized over its rows. Measured with
``bench/profile_bench.py`` (the ways taking turns): a thread pool inside the task gained nothing
consistent, since nearly all the work is the one property ranking and a prefork child has one
core of its own; three tasks sent at once by the client were no faster than this one task, since
the property list's JSON dominates either way. A task never fans out and waits itself: waiting on
subtasks inside a task can deadlock the pool.
"""

from __future__ import annotations

import time
from typing import Any

from celery import shared_task

from leadscore.settings import get_settings
from leadscore.tasks.matching import MATCH_MODEL, PAIR_MODELS, rank
from leadscore.tasks.scoring import score_lead
from leadscore.worker.process import model_pool
from ml_core.errors import InvalidLeadError, LeadscoreError
from ml_core.lead_profile import split_lead
from ml_core.matching import PREFERENCES

LEAD_MODELS = ("lead_scorer", "churn_predictor")


@shared_task(name="leadscore.score_lead_profile", acks_late=True, throws=(LeadscoreError,))
def score_lead_profile(lead: dict[str, Any], properties: list[Any] | None = None, top_k: int | None = 5) -> dict[str, Any]:
    """Conversion score, churn risk and (given ``properties``) the top-k matches with interest and viewing scores.

    An invalid lead raises one ``InvalidLeadError`` listing the problems of every part.
    """
    started = time.perf_counter()
    pool = model_pool()
    lead_id, views = split_lead(
        lead, [pool.get(name).spec for name in LEAD_MODELS], nested=(PREFERENCES,), unknown_fields=get_settings().unknown_fields
    )
    scores: dict[str, Any] = {}
    problems: list[dict[str, str]] = []
    for name in LEAD_MODELS:
        try:
            scores[name] = score_lead(views[name], model=name)
        except InvalidLeadError as exc:
            problems.extend(p for p in exc.problems if p not in problems)
    matches = None
    if properties is not None:
        try:
            matches = rank(lead, properties, top_k, PAIR_MODELS, MATCH_MODEL)
        except InvalidLeadError as exc:
            problems.extend(p for p in exc.problems if p not in problems)
    if problems:
        raise InvalidLeadError(lead_id, problems)
    return {
        "lead_id": lead_id,
        "scores": scores,
        "properties": matches,
        "latency_ms": round((time.perf_counter() - started) * 1000.0, 3),
    }
