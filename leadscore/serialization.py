"""JSON over the broker, refusing task messages no task of ours could have sent.

A task message that Celery cannot take apart is fatal to the whole worker: a JSON body that is
not the protocol's ``[args, kwargs, embed]`` triple (``[]``, ``null``, ``"x"``) raised
``ValueError``/``TypeError`` inside Celery's message handler, which it treats as an unrecoverable
error; the message went back on the queue and stopped every worker that took it (a crash loop).
``Consumer`` therefore checks each task message's headers and body before Celery reads them, and
answers a refused one like an undecodable one: acknowledged, never requeued, its caller told.

A prefork worker pickles each task's decoded arguments to hand them to a child; a lead nested a
few hundred levels deep made that pickling overflow the recursion limit and killed the whole
worker ("Unrecoverable error"), and with ``acks_late`` the message came back to kill the next one.
Refused here, at decoding, Celery logs the message as undecodable and acknowledges it: it is
never retried and the worker keeps consuming. ``Consumer`` also records the refusal as the task's
result, so the caller gets a typed ``InvalidPayloadError`` instead of waiting for its timeout.
"""

from __future__ import annotations

from typing import Any

from celery.utils.log import get_logger
from celery.utils.saferepr import saferepr
from celery.worker.consumer import Consumer as CeleryConsumer
from kombu.exceptions import ContentDisallowed, DecodeError
from kombu.serialization import register
from kombu.utils.json import dumps, loads
from vine import promise

from ml_core.errors import InvalidPayloadError

logger = get_logger(__name__)

# Errors Celery's message handler does not catch (it only handles decode and task errors): raised
# while it reads a message, each would stop the whole worker.
_FATAL_IN_CELERY = (ValueError, TypeError, KeyError, AttributeError, IndexError, OverflowError)

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


_SHOWN_ITEMS = 20  # of a list argument: Celery's repr stops at 1,024 characters anyway
_SHOWN_CHARS = 64


def shown(value: Any, depth: int = 3) -> str:
    """What Celery shows of a task's arguments (``argsrepr``/``kwargsrepr``: task events, Flower,
    ``celery inspect``, some log lines) instead of their repr: a lead's ``context`` becomes
    ``'<context>'`` and any longer text its length, so what a lead wrote never leaves the message."""
    return str(saferepr(_redacted(value, depth), 1024))


def _redacted(value: Any, depth: int) -> Any:
    if isinstance(value, str):
        return value if len(value) <= _SHOWN_CHARS else f"<{len(value)} characters>"
    if depth <= 0:
        return value if isinstance(value, (int, float, bool)) or value is None else f"<{type(value).__name__}>"
    if isinstance(value, dict):
        return {k: "<context>" if k == "context" else _redacted(v, depth - 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        items = [_redacted(v, depth - 1) for v in value[:_SHOWN_ITEMS]]
        return items + [f"<{len(value) - _SHOWN_ITEMS} more>"] if len(value) > _SHOWN_ITEMS else items
    return value


_MAX_TASK_ID = 255
_STRING_HEADERS = ("id", "task", "root_id", "parent_id", "group", "shadow", "eta", "expires", "argsrepr", "kwargsrepr", "origin")
_EMBED_KEYS = {"callbacks": list, "errbacks": list, "chain": list, "chord": dict, "group_id": str, "group_index": int}


class MalformedTaskError(ValueError):
    """A task message whose headers or body no Celery client would send."""


def check_task_message(headers: Any, body: Any) -> None:
    """Raise ``MalformedTaskError`` unless ``headers``/``body`` form a protocol-2 task message
    that Celery can take apart (types only: what the arguments mean is the task's business)."""
    if not isinstance(headers, dict):
        raise MalformedTaskError("headers are not an object")
    for key in _STRING_HEADERS:
        if headers.get(key) is not None and not isinstance(headers[key], str):
            raise MalformedTaskError(f"header {key!r} is not a string")
    if not isinstance(headers.get("id"), str) or not headers["id"]:
        raise MalformedTaskError("header 'id' is missing")
    retries = headers.get("retries", 0)
    if retries is not None and (isinstance(retries, bool) or not isinstance(retries, int)):
        raise MalformedTaskError("header 'retries' is not an integer")
    limits = headers.get("timelimit")
    if limits is not None and not (
        isinstance(limits, list) and len(limits) == 2
        and all(v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)) for v in limits)
    ):
        raise MalformedTaskError("header 'timelimit' is not a pair of numbers")
    if not (isinstance(body, list) and len(body) == 3):
        raise MalformedTaskError("body is not the [args, kwargs, embed] triple")
    args, kwargs, embed = body
    if not isinstance(args, list):
        raise MalformedTaskError("args are not a list")
    if not isinstance(kwargs, dict):
        raise MalformedTaskError("kwargs are not an object")
    if embed is not None:
        if not isinstance(embed, dict):
            raise MalformedTaskError("embed is not an object")
        for key, kind in _EMBED_KEYS.items():
            if embed.get(key) is not None and not isinstance(embed[key], kind):
                raise MalformedTaskError(f"embed {key!r} is not a {kind.__name__}")


class Consumer(CeleryConsumer):
    """The worker's consumer: refuses malformed task messages and reports every refusal to its caller."""

    def create_task_handler(self, promise: Any = promise) -> Any:
        handle = super().create_task_handler(promise)

        def on_task_received(message: Any) -> None:
            headers = message.headers
            if isinstance(headers, dict) and "task" in headers:  # protocol 2: check before Celery unpacks it
                try:
                    check_task_message(headers, message.decode())
                except MalformedTaskError as exc:
                    return self.refuse(message, str(exc))
                except ContentDisallowed:
                    return self.refuse(message, f"content type {message.content_type!r} is not accepted (JSON only)")
                except DecodeError as exc:
                    return self.on_decode_error(message, exc)
            else:  # protocol 1 or no headers: no client of ours sends these
                return self.refuse(message, "not a protocol-2 task message")
            try:
                handle(message)
            except _FATAL_IN_CELERY as exc:  # anything left that Celery would die of: refuse this message only
                logger.error("task message refused: %s", exc.__class__.__name__, exc_info=True)
                self.refuse(message, f"could not be read ({exc.__class__.__name__})")

        return on_task_received

    def refuse(self, message: Any, problem: str) -> None:
        """Acknowledge ``message`` without running it, and record ``InvalidPayloadError`` as its result."""
        logger.warning("task message refused: %s", problem)
        self._report(message, InvalidPayloadError(problem))
        if not message.acknowledged:
            message.reject_log_error(logger, self.connection_errors)  # requeue=False: dropped for good

    def on_decode_error(self, message: Any, exc: Exception) -> None:
        """Celery's own handler, without its log line: that holds the message's headers and the
        first 1,024 bytes of its body, which may be what a lead wrote."""
        self._report(message, InvalidPayloadError(str(exc.__cause__ or exc)))
        logger.critical("task message refused: cannot be decoded (%s)", exc.__cause__ or exc)
        message.ack()

    def _report(self, message: Any, error: InvalidPayloadError) -> None:
        headers = message.headers if isinstance(message.headers, dict) else {}
        task_id = headers.get("id")
        if isinstance(task_id, str) and 0 < len(task_id) <= _MAX_TASK_ID and task_id.isprintable():
            try:
                self.app.backend.mark_as_failure(task_id, error)
            except Exception:  # the message is still refused; only the report is lost
                logger.warning("could not record the refusal of a task message", exc_info=True)
