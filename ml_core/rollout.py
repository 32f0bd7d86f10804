"""Champion and challenger of a model, how the challenger takes part, and the model's history.

    models/<name>/champion          the version served (``Registry``)
    models/<name>/challenger.json   {"version", "mode", "percent", "since"}; absent: no challenger
    models/<name>/history.jsonl     one JSON object per line, appended, never rewritten

Modes of a challenger:

    none     registered, not serving
    shadow   scores the same leads as the champion; its results are logged and compared, never returned
    canary   serves ``percent`` % of leads, chosen by a hash of the model, the challenger's version and
             the lead id: the same lead always gets the same answer during one rollout, and each
             rollout exposes a different slice of leads

``promote`` makes the challenger champion; ``rollback`` returns to the champion before the current
one. Both refuse a version whose files fail their checksums or that ONNX Runtime cannot load, so a
corrupt version never replaces a working one. Pointers are replaced by an atomic rename; history
lines are appended under an exclusive lock, one ``write`` each.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from dataclasses import asdict, dataclass
from typing import Any, Literal

from ml_core.errors import ModelNotFoundError, RolloutError
from ml_core.registry import Registry, atomic_write
from ml_core.timestamps import utc_iso

CHALLENGER_FILE, HISTORY_FILE = "challenger.json", "history.jsonl"
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
    try:
        data = json.loads((registry.model_dir(name) / CHALLENGER_FILE).read_text())
    except FileNotFoundError:
        return None
    except ValueError:
        raise RolloutError(name, f"{CHALLENGER_FILE} is not valid JSON") from None
    return Challenger(**data)


def history(registry: Registry, name: str) -> list[dict[str, Any]]:
    try:
        lines = (registry.model_dir(name) / HISTORY_FILE).read_text().splitlines()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in lines if line.strip()]


def record(registry: Registry, name: str, event: str, **detail: Any) -> dict[str, Any]:
    """Append one entry to the model's history and return it."""
    entry = {"ts": utc_iso(), "event": event, "model": name, **detail}
    line = (json.dumps(entry, separators=(",", ":")) + "\n").encode()
    fd = os.open(registry.model_dir(name) / HISTORY_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)
    return entry


def set_challenger(registry: Registry, name: str, version: str, mode: Mode = "none", percent: float = 0.0) -> dict[str, Any]:
    verify_loads(registry, name, version)
    if version == champion_or_none(registry, name):
        raise RolloutError(name, f"{version} is the champion; a challenger must be another version")
    state = Challenger(version, mode, _checked_percent(name, mode, percent), utc_iso())
    atomic_write(registry.model_dir(name) / CHALLENGER_FILE, json.dumps(asdict(state)))
    return record(registry, name, "challenger_set", version=version, mode=mode, percent=state.percent)


def set_mode(registry: Registry, name: str, mode: Mode, percent: float = 0.0) -> dict[str, Any]:
    """Put the current challenger in shadow, canary (``percent`` of leads) or no mode at all."""
    if mode not in MODES:
        raise RolloutError(name, f"mode must be one of {list(MODES)}, not {mode!r}")
    current = challenger(registry, name)
    if current is None:
        raise RolloutError(name, "no challenger registered; retrain first")
    state = Challenger(current.version, mode, _checked_percent(name, mode, percent), utc_iso())
    atomic_write(registry.model_dir(name) / CHALLENGER_FILE, json.dumps(asdict(state)))
    return record(registry, name, "rollout_mode", version=current.version, mode=mode, percent=state.percent)


def promote(registry: Registry, name: str) -> dict[str, Any]:
    """The challenger becomes champion, once it is proven to load; the challenger slot is emptied."""
    current = challenger(registry, name)
    if current is None:
        raise RolloutError(name, "no challenger to promote")
    verify_loads(registry, name, current.version)
    previous = champion_or_none(registry, name)
    registry.set_champion(name, current.version)
    (registry.model_dir(name) / CHALLENGER_FILE).unlink(missing_ok=True)
    return record(registry, name, "promoted", version=current.version, previous=previous, mode=current.mode)


def rollback(registry: Registry, name: str) -> dict[str, Any]:
    """Return to the champion the current one replaced (walking back one promotion per call)."""
    current = registry.champion(name)
    target = rollback_target(history(registry, name), current)
    if target is None:
        raise RolloutError(name, f"champion {current} replaced no earlier champion; nothing to roll back to")
    verify_loads(registry, name, target)
    registry.set_champion(name, target)
    return record(registry, name, "rolled_back", version=target, previous=current)


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


def _checked_percent(name: str, mode: str, percent: float) -> float:
    if mode != "canary":
        return 0.0
    if not 0 < percent <= 100:
        raise RolloutError(name, f"canary percent must be in (0, 100], not {percent}")
    return float(percent)
