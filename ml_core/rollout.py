"""Champion and challenger of a model, how the challenger takes part, and the model's history.

All three live in the state store (``ml_core.store``): the model's row holds the champion and the
challenger (version, mode, percent, since); its history is appended, never rewritten.

Modes of a challenger:

    none     registered, not serving
    shadow   scores the same leads as the champion; its results are logged and compared, never returned
    canary   serves ``percent`` % of leads, chosen by a hash of the model, the challenger's version and
             the lead id: the same lead always gets the same answer during one rollout, and each
             rollout exposes a different slice of leads

``promote`` makes the challenger champion; ``rollback`` returns to the champion before the current
one. Both refuse a version whose files fail their checksums or that ONNX Runtime cannot load, so a
corrupt version never replaces a working one. That proof runs first, outside any transaction; then
one transaction locks the model's row, checks that the pointers are still what was proven (another
host may have promoted meanwhile: ``ConcurrentChangeError``, nothing changed), and writes the new
pointers and the history entry together.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from typing import Any, Literal

from ml_core.errors import ConcurrentChangeError, ModelNotFoundError, RolloutError
from ml_core.identifiers import model_name
from ml_core.registry import Registry
from ml_core.store.state import Change, History, Pointers
from ml_core.timestamps import utc_iso

Mode = Literal["none", "shadow", "canary"]
MODES: tuple[str, ...] = ("none", "shadow", "canary")


@dataclass(frozen=True)
class Challenger:
    version: str
    mode: Mode = "none"
    percent: float = 0.0
    since: str = ""

    def serves(self, model: str, lead_id: str) -> bool:
        """Whether this lead is in the canary slice (always ``False`` outside canary mode)."""
        if self.mode != "canary" or self.percent <= 0:
            return False
        digest = hashlib.blake2b(f"{model}:{self.version}:{lead_id}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big") % 10_000 < round(self.percent * 100)


def challenger(registry: Registry, name: str) -> Challenger | None:
    found = registry.store.pointers(model_name(name)).challenger
    return Challenger(**found) if found else None


def history(registry: Registry, name: str) -> list[dict[str, Any]]:
    return registry.store.history(model_name(name))


def record(registry: Registry, name: str, event: str, **detail: Any) -> dict[str, Any]:
    """Append one entry to the model's history and return it."""
    entry = _entry(name, event, **detail)
    registry.store.record(name, entry)
    return entry


def set_challenger(registry: Registry, name: str, version: str, mode: Mode = "none", percent: float = 0.0) -> dict[str, Any]:
    verify_loads(registry, name, version)
    state = Challenger(version, mode, _checked_percent(name, mode, percent), utc_iso())

    def decide(current: Pointers, _: History) -> Change:
        if version == current.champion:
            raise RolloutError(name, f"{version} is the champion; a challenger must be another version")
        return Change(Pointers(current.champion, asdict(state)),
                      _entry(name, "challenger_set", version=version, mode=mode, percent=state.percent))

    return registry.store.change(name, decide)


def set_mode(registry: Registry, name: str, mode: Mode, percent: float = 0.0) -> dict[str, Any]:
    """Put the current challenger in shadow, canary (``percent`` of leads) or no mode at all."""
    if mode not in MODES:
        raise RolloutError(name, f"mode must be one of {list(MODES)}, not {mode!r}")
    checked = _checked_percent(name, mode, percent)

    def decide(current: Pointers, _: History) -> Change:
        if current.challenger is None:
            raise RolloutError(name, "no challenger registered; retrain first")
        state = Challenger(current.challenger["version"], mode, checked, utc_iso())
        return Change(Pointers(current.champion, asdict(state)),
                      _entry(name, "rollout_mode", version=state.version, mode=mode, percent=state.percent))

    return registry.store.change(name, decide)


def promote(registry: Registry, name: str) -> dict[str, Any]:
    """The challenger becomes champion, once it is proven to load; the challenger slot is emptied."""
    proven = challenger(registry, name)
    if proven is None:
        raise RolloutError(name, "no challenger to promote")
    verify_loads(registry, name, proven.version)

    def decide(current: Pointers, _: History) -> Change:
        now = current.challenger
        if now is None or now["version"] != proven.version:
            raise ConcurrentChangeError(name, f"the challenger changed while {proven.version} was being verified (now "
                                              f"{now['version'] if now else 'none'}, champion {current.champion}): another process "
                                              "promoted or replaced it first; nothing was changed, see `leadscore history`")
        return Change(Pointers(proven.version, None),
                      _entry(name, "promoted", version=proven.version, previous=current.champion, mode=now["mode"]))

    return registry.store.change(name, decide)


def rollback(registry: Registry, name: str) -> dict[str, Any]:
    """Return to the champion the current one replaced (walking back one promotion per call)."""
    current = registry.champion(name)
    target = rollback_target(history(registry, name), current)
    if target is None:
        raise RolloutError(name, f"champion {current} replaced no earlier champion; nothing to roll back to")
    verify_loads(registry, name, target)

    def decide(now: Pointers, entries: History) -> Change:
        if now.champion != current or rollback_target(entries(), current) != target:
            raise ConcurrentChangeError(name, f"the champion changed while {target} was being verified (now {now.champion}, was "
                                              f"{current}): another process promoted or rolled back first; nothing was changed")
        return Change(Pointers(target, now.challenger), _entry(name, "rolled_back", version=target, previous=current))

    return registry.store.change(name, decide)


def rollback_target(entries: list[dict[str, Any]], current: str) -> str | None:
    """The champion before ``current``: the ``previous`` of the last promotion that made it champion."""
    for entry in reversed(entries):
        if entry.get("event") == "promoted" and entry.get("version") == current:
            previous = entry.get("previous")
            return str(previous) if previous else None
    return None


def verify_loads(registry: Registry, name: str, version: str) -> None:
    """Checksums verified and an ONNX Runtime session created: the proof a version can serve."""
    from ml_core.onnx_model import OnnxScorer  # the lifecycle side only: web clients read rollouts without ORT

    artifact = registry.load(name, version)
    try:
        OnnxScorer(name, version, artifact.onnx)
    except Exception as exc:  # whatever ORT raises, the version cannot serve
        raise RolloutError(name, f"{version} does not load in ONNX Runtime ({exc.__class__.__name__})") from None


def champion_or_none(registry: Registry, name: str) -> str | None:
    try:
        return registry.champion(name)
    except ModelNotFoundError:
        return None


def _entry(name: str, event: str, **detail: Any) -> dict[str, Any]:
    return {"ts": utc_iso(), "event": event, "model": name, **detail}


def _checked_percent(name: str, mode: str, percent: float) -> float:
    if mode != "canary":
        return 0.0
    if not 0 < percent <= 100:
        raise RolloutError(name, f"canary percent must be in (0, 100], not {percent}")
    return float(percent)
