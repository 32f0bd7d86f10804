"""The models one process serves, loaded lazily, each falling back to its rules when broken.

A worker process owns one ``ModelPool``. Loading happens on first use (or in a warm-up thread
right after the fork), never in the parent before forking: ONNX Runtime sessions must not cross
a fork.

Hot reload: at most every ``reload_check_seconds``, ``get`` reads the model's pointers (champion and
challenger) from the state store, one indexed row. When they changed, the new champion (and
challenger) is loaded (fetched into this host's cache first) and replaces the old ``Served`` entry. A ``Served`` is immutable, so a task
that got one before the swap finishes on it; every result names the version that produced it. A
version that fails to load leaves the old one serving: ``on_change`` reports it
(``reload_failed``), and it is tried again after ``reset_after_seconds``. A model with no version
loaded at all (missing, or refused at first load) is left to its breaker, whose trial loads the
champion within ``reset_after_seconds``.

The same check stats the ONNX files being served. A served file that changed on disk (inode,
size or mtime) is verified again, checksum and identity, exactly as a fresh process would load
it: refused, its model serves the rules (the breaker retries it), so every worker kind, scoring
or batch, agrees within ``reload_check_seconds``, restarted or not.

Scoring never waits on the store being up: when it cannot be read, the pointers count as unchanged
(what is loaded keeps serving), the outage is logged once, and the next look is
``reset_after_seconds`` later; the first successful look after it loads whatever changed meanwhile.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from ml_core import identity
from ml_core.breaker import CircuitBreaker, GuardedScorer, Transition
from ml_core.decision import Decision
from ml_core.derived_rules import rules_for
from ml_core.errors import ArtifactIntegrityError, ModelLoadError, ModelNotFoundError, SpecError, StoreUnavailableError
from ml_core.fallback import RuleScorer
from ml_core.onnx_model import OnnxScorer
from ml_core.registry import Registry
from ml_core.rollout import Challenger, challenger
from ml_core.spec import ModelSpec

log = logging.getLogger(__name__)

Change = Callable[[str, str, str, str], None]
"""``on_change(model, what, version, detail)``: ``reloaded``, ``reload_failed``, ``challenger_loaded``, ``challenger_failed``."""


@dataclass(frozen=True)
class LoadedChallenger:
    state: Challenger
    scorer: OnnxScorer


@dataclass(frozen=True)
class Served:
    spec: ModelSpec
    scorer: GuardedScorer
    challenger: LoadedChallenger | None = None

    def for_lead(self, lead_id: object) -> GuardedScorer | OnnxScorer:
        """The champion, or the challenger for a lead in its canary slice."""
        c = self.challenger
        if c is not None and isinstance(lead_id, str) and c.state.serves(self.spec.name, lead_id):
            return c.scorer
        return self.scorer

    @property
    def shadow(self) -> OnnxScorer | None:
        """The challenger when it runs in shadow mode: it scores, its results are never returned."""
        c = self.challenger
        return c.scorer if c is not None and c.state.mode == "shadow" else None


class ModelPool:
    def __init__(
        self,
        registry: Registry,
        *,
        failure_threshold: int = 5,
        reset_after_seconds: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        on_transition: Transition | None = None,
        reload_check_seconds: float = 2.0,
        on_change: Change | None = None,
    ) -> None:
        self.registry = registry
        self.failure_threshold = failure_threshold
        self.reset_after_seconds = reset_after_seconds
        self.reload_check_seconds = reload_check_seconds
        self._clock = clock
        self._on_transition = on_transition
        self._on_change = on_change
        self._served: dict[str, Served] = {}
        self._pointers: dict[str, tuple[object, ...] | None] = {}
        self._next_check: dict[str, float] = {}
        self._store_down = False
        self._lock = threading.Lock()

    def get(self, name: str) -> Served:
        """The model to serve for ``name``. An unknown model raises ``ModelNotFoundError``."""
        served = self._served.get(name)
        if served is None:
            with self._lock:
                served = self._served.get(name)
                if served is None:
                    served, _ = self._refresh(name, None)
        elif self._clock() >= self._next_check.get(name, 0.0):
            with self._lock:
                served, changes = self._refresh(name, self._served[name])
            for change in changes:  # outside the lock: a hook may call get() again
                self._report(name, *change)
        return served

    def loaded(self) -> dict[str, dict[str, str]]:
        described = {}
        for name, s in self._served.items():
            described[name] = s.scorer.describe()
            if s.challenger is not None:
                state = s.challenger.state
                described[name]["challenger"] = f"{state.version} ({state.mode}{f' {state.percent:g}%' if state.mode == 'canary' else ''})"
        return described

    def _refresh(self, name: str, served: Served | None) -> tuple[Served, list[tuple[str, str, str]]]:
        """Load what the pointers name if they changed since last look. Called under the lock."""
        self._next_check[name] = self._clock() + self.reload_check_seconds
        signature = self._signature(name)
        if served is not None and signature == self._pointers.get(name) and not self._files_changed(name, served):
            return served, []
        self._pointers[name] = signature
        changes: list[tuple[str, str, str]] = []
        if served is None:
            served = self._load(name)
        else:
            served = self._reload_champion(name, served, changes)
        served = self._reload_challenger(name, served, changes)
        self._served[name] = served
        return served, changes

    def _reload_champion(self, name: str, served: Served, changes: list[tuple[str, str, str]]) -> Served:
        try:
            version = self.registry.champion(name)
        except (ModelNotFoundError, StoreUnavailableError):
            return served
        primary = served.scorer.primary
        if primary is None:
            # nothing loaded yet (missing or broken): the breaker's trial loads the champion
            # within reset_after_seconds, and says so in its own events
            return served
        if primary.version == version:
            return self._reverify_champion(name, served, primary, changes)
        try:
            scorer = self._open(name, version)
        except Exception as exc:  # the old version keeps serving; reported, retried later
            self._pointers[name] = None
            self._next_check[name] = self._clock() + self.reset_after_seconds
            changes.append(("reload_failed", version, str(exc)))
            return served
        changes.append(("reloaded", version, f"was {primary.version if primary else served.scorer.version}"))
        return Served(spec=served.spec, scorer=self._guarded(name, served.spec, scorer), challenger=served.challenger)

    def _reverify_champion(self, name: str, served: Served, primary: OnnxScorer, changes: list[tuple[str, str, str]]) -> Served:
        """The served file changed on disk: verified again, or refused as a fresh load would be."""
        if not self._stale(name, primary):
            return served
        try:
            scorer = self._open(name, primary.version)
        except Exception as exc:  # the rules serve; reported; the breaker retries
            changes.append(("reload_failed", primary.version, f"served file changed on disk and is refused, serving rules: {exc}"))
            return Served(spec=served.spec, scorer=self._refused(name, served.spec, str(exc)), challenger=served.challenger)
        return Served(spec=served.spec, scorer=self._guarded(name, served.spec, scorer), challenger=served.challenger)

    def _reload_challenger(self, name: str, served: Served, changes: list[tuple[str, str, str]]) -> Served:
        try:
            state = challenger(self.registry, name)
        except Exception as exc:  # a bad challenger file must never stop the champion
            changes.append(("challenger_failed", "?", str(exc)))
            return replace(served, challenger=None)
        if state is None or state.mode == "none":
            return served if served.challenger is None else replace(served, challenger=None)
        current = served.challenger
        if current is not None and current.state.version == state.version and not self._stale(name, current.scorer):
            return replace(served, challenger=LoadedChallenger(state, current.scorer))
        try:
            scorer = self._open(name, state.version)
        except Exception as exc:  # the champion serves alone; reported
            changes.append(("challenger_failed", state.version, str(exc)))
            return replace(served, challenger=None)
        changes.append(("challenger_loaded", state.version, state.mode))
        return replace(served, challenger=LoadedChallenger(state, scorer))

    def _signature(self, name: str) -> tuple[object, ...] | None:
        """The model's pointers as stored; while the store cannot be read, the last ones seen."""
        try:
            pointers = self.registry.store.pointers(name)
        except StoreUnavailableError as exc:
            if not self._store_down:
                log.error("model %s: %s; serving what is loaded until it answers", name, exc)
                self._store_down = True
            self._next_check[name] = self._clock() + self.reset_after_seconds
            return self._pointers.get(name)
        if self._store_down:
            log.warning("state store answers again; following its pointers")
            self._store_down = False
        challenger = pointers.challenger or {}
        return (pointers.champion, *(challenger.get(k) for k in ("version", "mode", "percent")))

    def _stale(self, name: str, scorer: OnnxScorer | None) -> bool:
        """Whether the ONNX file ``scorer`` was read from has a new inode, size or mtime since."""
        return scorer is not None and self.registry.file_id(name, scorer.version) != scorer.file_id

    def _files_changed(self, name: str, served: Served) -> bool:
        return self._stale(name, served.scorer.primary) or (served.challenger is not None and self._stale(name, served.challenger.scorer))

    def _report(self, name: str, what: str, version: str, detail: str) -> None:
        level = logging.ERROR if what.endswith("failed") else logging.INFO
        log.log(level, "model %s: %s %s (%s)", name, what.replace("_", " "), version, detail)
        if self._on_change is not None:
            try:
                self._on_change(name, what, version, detail)
            except Exception:  # reporting must never break serving
                log.exception("model change hook failed")

    def _guarded(self, name: str, spec: ModelSpec, primary: OnnxScorer | None) -> GuardedScorer:
        breaker = CircuitBreaker(
            name,
            failure_threshold=self.failure_threshold,
            reset_after_seconds=self.reset_after_seconds,
            clock=self._clock,
            on_transition=self._on_transition,
        )

        def load() -> OnnxScorer:
            scorer = self._open(name)
            if spec.fallback is None:  # rules derived with the champion the breaker's trial just loaded
                guarded.fallback = RuleScorer(spec, "", rules_for(self.registry, spec))
            return scorer

        # a spec without [fallback] serves the rules derived at training, kept in the champion's card
        guarded = GuardedScorer(breaker, RuleScorer(spec, "", rules_for(self.registry, spec)), load, primary)
        return guarded

    def _refused(self, name: str, spec: ModelSpec, reason: str) -> GuardedScorer:
        """The rules, with the breaker open on ``reason``: its trial loads the champion later."""
        scorer = self._guarded(name, spec, None)
        scorer.breaker.failed(reason, fatal=True)
        return scorer

    def _load(self, name: str) -> Served:
        spec = self.registry.spec(name)
        try:
            scorer = self._guarded(name, spec, self._open(name))
        except Exception as exc:  # reasons were logged; the breaker retries later
            scorer = self._refused(name, spec, str(exc))
        return Served(spec=spec, scorer=scorer)

    def _open(self, name: str, version: str | None = None) -> OnnxScorer:
        """A version (the champion by default), verified and in an ONNX Runtime session."""
        try:
            artifact = self.registry.load(name, version)
            scorer = OnnxScorer(name, artifact.version, artifact.onnx, Decision.from_card(artifact.card), artifact.file_id)
            identity.check(name, artifact.version, artifact.card, self.registry.spec(name).columns, scorer.metadata)
        except (ModelNotFoundError, ArtifactIntegrityError, SpecError) as exc:
            log.error("model %s refused, serving rule-based fallback: %s", name, exc)
            raise
        except Exception as exc:
            log.exception("model %s failed to load, serving rule-based fallback", name)
            raise ModelLoadError(name, exc.__class__.__name__) from None
        log.info("model %s version %s loaded", name, artifact.version)
        _warn_if_derived_otherwise(self.registry.spec(name), artifact.version, artifact.card)
        return scorer


def _warn_if_derived_otherwise(spec: ModelSpec, version: str, card: dict[str, Any]) -> None:
    """A model of conversations learned from what its card's featurizer derived; a phrase file
    edited since derives other features. It still serves (the columns are the same), but not silently."""
    if spec.context is None:
        return
    from ml_core.context import version as featurizer_version

    trained = (card.get("context_featurizer") or {}).get("version")
    now = featurizer_version(spec)
    if trained != now:
        log.warning(
            "model %s version %s was trained on features derived by %s, but conversations are now derived by %s "
            "(the phrase file or the featurizer changed): retrain it with `leadscore train %s`",
            spec.name, version, trained or "an unrecorded featurizer", now, spec.name,
        )
