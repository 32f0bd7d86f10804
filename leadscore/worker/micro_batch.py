"""Adaptive micro-batching of ``score_lead``: the messages that wait together are scored together.

``score_lead`` names ``MicroBatcher`` as its Celery ``Strategy``: the worker's main process hands
it each ``score_lead`` message instead of dispatching it alone. It works like Triton's dynamic
batching with no queue delay, not like a timer:

- a message is buffered, and the buffer goes to the pool at the end of the event-loop turn that
  received it unless a batch is already running: a lone request is scored at once, no window;
- while a batch runs, messages pile up; when it finishes, everything waiting (at most
  ``score_batch_max``) goes as the next batch. Under load a batch is what queued meanwhile;
- buffered messages raise the channel's prefetch by one each (as Celery does for ETA tasks), so
  the worker's prefetch limit does not cap the batch size (celery-batches#17), up to a bound.

In the child, ``run_batch`` scores the batch (``leadscore.tasks.scoring.score_calls``: one
served version per model, one vectorized call per scorer), stores every request's own result
or typed error under its own task id in one pipelined round trip, and only then returns. The
main process then acknowledges each message and sends each request's task events, so Flower
shows every request. A child lost mid-batch (SIGKILL, OOM) fails the whole job with
``WorkerLostError``: Celery's own ``Request.on_failure`` then acknowledges each request whose
result was already stored and requeues every other one, so each task id gets exactly one result
(results are written with SET NX: a redelivered or re-sent request never overwrites one).

Calls it does not batch go through Celery's default strategy, unchanged: ``explain=True``,
an ETA, an expiry, a revoked id, or arguments that do not fit ``score_lead``'s signature.

Why not celery-batches: its batches flush on a count or a timer (``flush_interval``, which a
lone request waits for), it never requeues a batch whose child died (the messages stay
unacknowledged until the visibility timeout), sends no per-request task events, and hands the
task a list of requests instead of keeping ``score_lead``'s signature for callers.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from functools import partial
from typing import Any

from celery import Celery, signals
from celery.app.task import Task
from celery.app.trace import LOG_RECEIVED
from celery.utils.imports import symbol_by_name
from celery.worker.request import Request, create_request_cls
from celery.worker.state import task_ready, task_reserved
from celery.worker.strategy import default, hybrid_to_proto2, proto1_to_proto2
from celery.worker.strategy import logger as strategy_log
from kombu.message import Message
from kombu.transport import redis as redis_transport
from kombu.transport import virtual

from leadscore.settings import get_settings
from leadscore.worker import metrics
from leadscore.worker.result_store import Stored, store_results

log = logging.getLogger(__name__)
_CALL_KWARGS = frozenset({"model", "explain"})
_BOOST_BATCHES = 4
"""Buffered messages raise prefetch up to this many full batches (beyond that, prefetch applies)."""
_RUNNING_BATCHES = 1
"""Batches in the pool at once. One: the next batch is what queued while this one ran (a child
scores 64 leads in a few milliseconds), and the other children stay free for the queue's other
tasks and for explanations. Measured: the worker's main process, which receives, acknowledges and
reports every message one by one, is the bottleneck well before a child scoring batches is."""


class MicroBatcher:
    """A Celery task strategy: ``task.Strategy = "leadscore.worker.micro_batch:MicroBatcher"``."""

    def __init__(self, task: Task, app: Celery, consumer: Any, **kwargs: Any) -> None:
        self.fallback = default(task, app, consumer, **kwargs)
        self.task, self.app, self.consumer = task, app, consumer
        self.Req = create_request_cls(
            symbol_by_name(task.Request), task, consumer.pool, consumer.hostname, consumer.event_dispatcher, app=app
        )
        eventer = consumer.event_dispatcher
        self.send_event = eventer.send if eventer is not None and eventer.enabled and task.send_events else None
        self.revoked = consumer.controller.state.revoked
        self.log_received = strategy_log.isEnabledFor(logging.INFO)
        self.max_batch = get_settings().score_batch_max
        self.buffer: deque[Request] = deque()
        self.running = 0
        self.boosted: set[int] = set()  # id() of each buffered request that raised prefetch (a task id can come twice)
        self.flush_scheduled = False

    def __call__(self, message: Message, body: Any, ack: Any, reject: Any, callbacks: Any, **kw: Any) -> None:
        if self.max_batch == 1:
            return self.fallback(message, body, ack, reject, callbacks, **kw)
        req = self._request(message, body, ack, reject)
        if not self._batchable(req):
            return self.fallback(message, body, ack, reject, callbacks, **kw)
        if self.log_received:  # the line Celery logs for every task it receives
            context = {"id": req.id, "name": req.name, "args": req.argsrepr, "kwargs": req.kwargsrepr, "eta": None}
            strategy_log.info(LOG_RECEIVED, context, extra={"data": context})
        signals.task_received.send(sender=self.consumer, request=req)
        if self.send_event is not None:
            self.send_event(
                "task-received",
                uuid=req.id,
                name=req.name,
                args=req.argsrepr,
                kwargs=req.kwargsrepr,
                root_id=req.root_id,
                parent_id=req.parent_id,
                retries=req.request_dict.get("retries", 0),
                eta=None,
                expires=None,
            )
        task_reserved(req)
        if callbacks:
            for callback in callbacks:
                callback(req)
        if len(self.boosted) < _BOOST_BATCHES * self.max_batch:
            self.consumer.qos.increment_eventually()
            self.boosted.add(id(req))
        self.buffer.append(req)
        self._schedule()
        return None

    def _request(self, message: Message, body: Any, ack: Any, reject: Any) -> Request:
        # as celery.worker.strategy.default reads a message (protocol 2, or 1 converted)
        if body is None and "args" not in message.payload:
            body, headers, decoded, utc = message.body, message.headers, False, self.app.uses_utc_timezone()
        elif "args" in message.payload:
            body, headers, decoded, utc = hybrid_to_proto2(message, message.payload)
        else:
            body, headers, decoded, utc = proto1_to_proto2(message, body)
        return self.Req(
            message,
            on_ack=ack,
            on_reject=reject,
            app=self.app,
            hostname=self.consumer.hostname,
            eventer=self.consumer.event_dispatcher,
            task=self.task,
            connection_errors=self.consumer.connection_errors,
            body=body,
            headers=headers,
            decoded=decoded,
            utc=utc,
        )

    def _batchable(self, req: Request) -> bool:
        if req.eta or req.expires or req.id in self.revoked:
            return False
        args, kwargs = req.args, req.kwargs
        if not isinstance(args, (list, tuple)) or not 1 <= len(args) <= 3 or not isinstance(kwargs, dict) or set(kwargs) - _CALL_KWARGS:
            return False
        return kwargs.get("explain", args[2] if len(args) == 3 else False) is False

    def _schedule(self) -> None:
        """Flush at the end of this event-loop turn, so messages read in the same turn go together."""
        if self.flush_scheduled or self.running >= _RUNNING_BATCHES:
            return
        hub = self.consumer.hub
        if hub is None:
            self._flush()
        else:
            self.flush_scheduled = True
            hub.call_soon(self._flush)

    def _flush(self) -> None:
        self.flush_scheduled = False
        while self.buffer and self.running < _RUNNING_BATCHES:
            batch = [self.buffer.popleft() for _ in range(min(self.max_batch, len(self.buffer)))]
            self.running += 1  # before apply_async: a solo pool calls back before it returns
            items = [(r.id, list(r.args), dict(r.kwargs), _context(r)) for r in batch]
            self.consumer.pool.apply_async(
                run_batch,
                args=(items,),
                accept_callback=partial(self._accepted, batch),
                callback=partial(self._done, batch),
                error_callback=partial(self._failed, batch),
            )

    def _accepted(self, batch: list[Request], pid: int, time_accepted: float) -> None:
        for req in batch:
            req.on_accepted(pid, time_accepted)  # task-started, one per request

    def _done(self, batch: list[Request], outcomes: list[tuple[bool, str, float]]) -> None:
        acknowledge_all(batch)  # every outcome is stored, an error too: final, never redelivered
        for req, (ok, shown, runtime) in zip(batch, outcomes):
            if ok:
                req.on_success((False, shown, runtime))  # task-succeeded (already acknowledged)
            else:
                task_ready(req)
                req.send_event("task-failed", exception=shown, traceback=None)
        self._finished(batch)

    def _failed(self, batch: list[Request], exc_info: Any) -> None:
        # WorkerLostError: Celery acknowledges a request whose result was stored and requeues the rest
        for req in batch:
            req.on_failure(exc_info)
        self._finished(batch)

    def _finished(self, batch: list[Request]) -> None:
        self.running -= 1
        for req in batch:
            if id(req) in self.boosted:
                self.boosted.discard(id(req))
                self.consumer.qos.decrement_eventually()
        self._schedule()


def acknowledge_all(batch: list[Request]) -> None:
    """Acknowledge a batch's messages. On kombu's Redis transport an ack is a round trip (and a new
    client object) per message; here the batch's acks share one pipeline. Elsewhere, one by one."""
    pending = [req for req in batch if not req.acknowledged]
    channels = {req._message.channel for req in pending}
    qos = getattr(next(iter(channels)), "qos", None) if len(channels) == 1 else None  # amqp channels have none
    if not isinstance(qos, redis_transport.QoS):
        for req in pending:
            req.acknowledge()
        return
    try:
        with qos.pipe_or_acquire() as pipe:
            for req in pending:
                qos._remove_from_indices(req._message.delivery_tag, pipe)
            pipe.execute()
    except Exception as exc:  # as kombu's ack_log_error: the broker restores them after visibility_timeout
        log.error("acknowledging %d score_lead messages failed: %r", len(pending), exc)
    for req in pending:
        virtual.QoS.ack(qos, req._message.delivery_tag)  # the channel's own bookkeeping of deliveries
        req._message._state = "ACK"
        req.acknowledged = True


def _context(req: Request) -> dict[str, Any]:
    """What the result backend reads of a request (its group, parent and root), as plain data."""
    headers = req.request_dict
    return {k: headers.get(k) for k in ("id", "group", "parent_id", "root_id", "ignore_result")}


def run_batch(items: list[tuple[str, list[Any], dict[str, Any], dict[str, Any]]]) -> list[tuple[bool, str, float]]:
    """In a pool child: score the batch, store each request's outcome, and only then return (the
    main process acknowledges after this). ``(ok, repr, runtime)`` per request, for its events."""
    from leadscore.tasks.scoring import score_calls, score_lead

    started = time.perf_counter()
    calls = [(args, kwargs) for _, args, kwargs, _ in items]
    try:
        outcomes: list[Any] = score_calls(calls)
    except Exception:  # a fault outside one lead's validation: isolate it, so it fails only its own lead
        log.exception("a batch of %d score_lead requests failed together; scoring them one by one", len(items))
        outcomes = [_alone(score_calls, call) for call in calls]
    store_results(score_lead.backend, [Stored(task_id, context, outcome) for (task_id, _, _, context), outcome in zip(items, outcomes)])
    metrics.record_batch(len(items))
    runtime = time.perf_counter() - started
    # a short repr for the task events, as Celery sends (its saferepr cost more than scoring a lead)
    return [(not isinstance(o, BaseException), repr(o)[:1024], runtime) for o in outcomes]


def _alone(score_calls: Any, call: tuple[list[Any], dict[str, Any]]) -> Any:
    try:
        return score_calls([call])[0]
    except Exception as exc:  # stored as this request's failure; the others are unaffected
        return exc
