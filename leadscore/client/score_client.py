"""The web services' fast path: a cached score without a trip through the broker.

    client = ScoreClient()                 # once per web process: cache connection, specs, a writer thread
    result = client.score(lead)            # a cache hit, or a score_lead round trip on a miss
    pending = client.score_async(lead)     # a hit comes back already done; a miss is score_lead's AsyncResult
    client.close()                         # at shutdown: flush counters and events still waiting

``score_lead.delay(lead)`` stays the primary API; this helper only adds the cache in front.

The client validates and encodes the lead exactly as a worker does (``ml_core.features``, the
spec from ``models_dir``: specs are committed code), so an invalid lead raises
``InvalidLeadError`` here, without a round trip, and the feature digest is the workers'. It learns
the served version from the version key workers publish, in the same ``MGET`` as the entry
(``leadscore/stores/cache.py``): it never serves an entry of another version than the published one. A hit
is the cached result for *this* lead's id, with ``cached: true`` and ``latency_ms`` of the
lookup; it is counted, published as ``lead.cache_hit`` and, when escalated, handed to the deep
tier, all from a background thread. A cache outage makes every lookup a quick miss.

``score`` re-sends ``score_lead`` under the same task id when no result has come after
``client_resend_seconds``. kombu's Redis transport pops a message and records it as unacknowledged
in two steps; a worker killed between them loses the message, and nothing on the broker side
redelivers it. Scoring is idempotent and both deliveries write the one result of that task id, so
the re-send makes ``score`` at-least-once end to end on either broker; the price is an occasional
lead scored twice (its events published twice) when a worker is merely slow.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from celery import Celery, states
from celery.exceptions import TimeoutError as ResultTimeout
from celery.result import AsyncResult, EagerResult

from leadscore.settings import Settings, get_settings
from leadscore.stores.side_effects import ScoreRecord, SideEffects, lead_features
from leadscore.stores.state import registry
from ml_core.cache_entry import feature_digest
from ml_core.context import encode_with_context
from ml_core.errors import LeadscoreError, StoreUnavailableError
from ml_core.identifiers import DEFAULT_MODEL, model_name
from ml_core.rollout import Challenger, challenger
from ml_core.spec import ModelSpec


class ScoreClient:
    def __init__(self, settings: Settings | None = None, app: Celery | None = None) -> None:
        if app is None:
            from leadscore import app as default_app

            app = default_app
        self.settings = settings or get_settings()
        self.app: Celery = app
        self.registry = registry(self.settings)
        self.effects = SideEffects(self.settings, self.app.send_task)
        self._specs: dict[str, ModelSpec] = {}
        self._rollouts: dict[str, tuple[float, Challenger | None]] = {}

    def lookup(self, lead: Any, model: str = DEFAULT_MODEL) -> dict[str, Any] | None:
        """The cached result for this lead, or ``None``. Raises ``InvalidLeadError`` for a bad lead."""
        return self._lookup(lead, model)[0]

    def _lookup(self, lead: Any, model: str) -> tuple[dict[str, Any] | None, str]:
        """``lookup``, and the lead's feature digest (a miss's result is remembered under it)."""
        started = time.perf_counter()
        spec = self._spec(model)
        encoded, derived = encode_with_context(spec, [lead], self.settings.unknown_fields)
        if encoded.errors:
            raise encoded.errors[0].to_exception()
        lead = {"id": lead["id"], **derived[0]} if derived else lead  # a conversation: what was derived
        digest = feature_digest(spec.sha256, encoded.X[0])
        if self._in_canary(model, encoded.ids[0]):  # the cache holds champion scores only
            self.effects.submit(ScoreRecord("miss", model, digest))
            return None, digest
        found = self.effects.cache.lookup(model, digest, encoded.ids[0])
        if found is None:
            self.effects.submit(ScoreRecord("miss", model, digest))
            return None, digest
        found["cached"] = True
        if derived:  # the cache keeps no lead's own fields: a conversation's derived features are its own
            found["features"] = derived[0]
        found["latency_ms"] = round((time.perf_counter() - started) * 1000.0, 3)
        self.effects.submit(ScoreRecord("hit", model, digest, found, lead_features(spec, lead)))
        return found, digest

    def score(self, lead: Any, model: str = DEFAULT_MODEL, *, explain: bool = False, timeout: float = 10.0) -> dict[str, Any]:
        """A hit, or ``score_lead``'s result, re-sent while none comes (module docstring).
        ``explain=True`` always goes to a worker. Raises ``celery.exceptions.TimeoutError`` after ``timeout``."""
        hit, digest = (None, None) if explain else self._lookup(lead, model)
        if hit is not None:
            return hit
        deadline = time.monotonic() + timeout
        pending = self._send(lead, model, explain)
        while True:
            left = deadline - time.monotonic()
            try:
                result: dict[str, Any] = pending.get(timeout=max(0.001, min(self.settings.client_resend_seconds, left)))
                if digest is not None:
                    self.effects.cache.remember(model, digest, result)
                return result
            except ResultTimeout:
                if time.monotonic() >= deadline:
                    raise
                self._send(lead, model, explain, task_id=pending.id)

    def score_async(self, lead: Any, model: str = DEFAULT_MODEL, *, explain: bool = False) -> AsyncResult | EagerResult:
        """A finished result for a hit; on a miss the ``AsyncResult`` of ``score_lead``."""
        hit = None if explain else self.lookup(lead, model)
        if hit is not None:
            return EagerResult(str(uuid.uuid4()), hit, states.SUCCESS)
        return self._send(lead, model, explain)

    def close(self, timeout: float = 2.0) -> bool:
        """Flush what the background writer still holds; ``False`` if it could not within ``timeout``."""
        return self.effects.drain(timeout)

    def __enter__(self) -> ScoreClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _in_canary(self, model: str, lead_id: str) -> bool:
        """Whether a canary challenger serves this lead; the rollout is re-read from the state store at
        most every ``reload_check_seconds``, the bound workers keep too. While the store cannot be
        reached, the last rollout read stands (looked for again every ``breaker_reset_seconds``)."""
        next_check, state = self._rollouts.get(model, (-1e18, None))
        now = time.monotonic()
        if now >= next_check:
            wait = self.settings.reload_check_seconds
            try:
                state = challenger(self.registry, model)
            except StoreUnavailableError:
                wait = self.settings.breaker_reset_seconds
            except LeadscoreError:  # an unreadable rollout: the champion serves
                state = None
            self._rollouts[model] = (now + wait, state)
        return state is not None and state.serves(model, lead_id)

    def _spec(self, model: str) -> ModelSpec:
        spec = self._specs.get(model)
        if spec is None:
            spec = self._specs[model] = self.registry.spec(model)
        return spec

    def _send(self, lead: Any, model: str, explain: bool, task_id: str | None = None) -> AsyncResult:
        kwargs: dict[str, Any] = {"model": model_name(model), **({"explain": True} if explain else {})}
        return self.app.send_task("leadscore.score_lead", args=[lead], kwargs=kwargs, task_id=task_id)
