"""JSON over the broker, refusing payloads nested deeper than any task of ours needs.

A prefork worker pickles each task's decoded arguments to hand them to a child; a lead nested a
few hundred levels deep made that pickling overflow the recursion limit and killed the whole
worker ("Unrecoverable error"), and with ``acks_late`` the message came back to kill the next one.
Refused here, at decoding, Celery logs the message as undecodable and acknowledges it: it is
never retried and the worker keeps consuming. ``Consumer`` also records the refusal as the task's
result, so the caller gets a typed ``InvalidPayloadError`` instead of waiting for its timeout.
"""

from __future__ import annotations

from typing import Any

from celery.worker.consumer import Consumer as CeleryConsumer
from kombu.serialization import register
from kombu.utils.json import dumps, loads

from ml_core.errors import InvalidPayloadError

MAX_DEPTH = 32
"""A lead is 4 levels deep inside a task message; chords and chains add a handful more."""


class PayloadTooDeepError(ValueError):
    def __init__(self, limit: int) -> None:
        super().__init__(f"JSON nested deeper than {limit} levels; refused before it reaches a task")


def check_depth(value: Any, limit: int = MAX_DEPTH) -> None:
    """Raise if ``value`` nests containers deeper than ``limit``; iterative, so it cannot overflow."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            raise PayloadTooDeepError(limit)
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))


def checked_loads(data: str | bytes) -> Any:
    value = loads(data)
    if isinstance(value, (dict, list)):
        check_depth(value)
    return value


def install() -> None:
    """Replace kombu's ``json`` decoder (same name and content type) in this process."""
    register("json", dumps, checked_loads, content_type="application/json", content_encoding="utf-8")


class Consumer(CeleryConsumer):
    """The worker's consumer, reporting undecodable task messages to their callers."""

    def on_decode_error(self, message: Any, exc: Exception) -> None:
        task_id = (message.headers or {}).get("id")
        if task_id:
            try:
                self.app.backend.mark_as_failure(task_id, InvalidPayloadError(str(exc.__cause__ or exc)))
            except Exception:  # noqa: BLE001 - the message is still acknowledged below; only the report is lost
                pass
        super().on_decode_error(message, exc)
