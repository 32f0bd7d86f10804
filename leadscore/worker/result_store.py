"""Store a batch's results, one per task id, in one round trip to the Redis result backend.

Each request's value is exactly what Celery itself stores (``_get_result_meta``, the backend's
encoder, ``prepare_exception`` for an error), so ``AsyncResult.get()`` returns the result or raises
the typed error as for a task run alone. Written with ``SET ... NX`` and published only when set:
the first result of a task id is its only one, so a batch redelivered after its child died, or a
lead ``ScoreClient`` re-sent, never overwrites what a caller may already have read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from celery import states
from celery.app.task import Context
from celery.backends.redis import RedisBackend

# KEYS[1] the task's result key; ARGV: the encoded meta, its lifetime in seconds
_SET_ONCE = """
if redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2], 'NX') then
  redis.call('PUBLISH', KEYS[1], ARGV[1])
  return 1
end
return 0
"""


@dataclass(frozen=True)
class Stored:
    task_id: str
    context: dict[str, Any]
    """The request's id, group, parent and root (what the backend records with a result)."""
    outcome: Any
    """The result, or the exception the caller gets."""


def store_results(backend: Any, stored: list[Stored]) -> None:
    if not isinstance(backend, RedisBackend):  # another backend: Celery's own calls, one per result
        for s in stored:
            if isinstance(s.outcome, BaseException):
                backend.mark_as_failure(s.task_id, s.outcome, request=Context(s.context))
            else:
                backend.mark_as_done(s.task_id, s.outcome, request=Context(s.context))
        return
    with backend.client.pipeline(transaction=False) as pipe:
        for s in stored:
            failed = isinstance(s.outcome, BaseException)
            result = backend.prepare_exception(s.outcome) if failed else s.outcome
            meta = backend._get_result_meta(
                result=result, state=states.FAILURE if failed else states.SUCCESS, traceback=None, request=Context(s.context)
            )
            meta["task_id"] = s.task_id
            expires = backend.failure_expires if failed else backend.expires
            pipe.eval(_SET_ONCE, 1, backend.get_key_for_task(s.task_id), backend.encode(meta), int(expires or 86_400))
        pipe.execute()
