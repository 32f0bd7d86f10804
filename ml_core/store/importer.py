"""Import what a host kept on disk before the state store: a models directory and an outcome file.

    models/<name>/v<N>/      card.json and every file it lists, verified against the card's sha256
    models/<name>/champion   the champion pointer
    models/<name>/challenger.json, history.jsonl
    <data_dir>/outcomes.sqlite3

Nothing is lost and nothing is done twice: a version already in the store is left as it is, a
model whose history the store already holds keeps it (its file is not appended again), pointers
are set only where the store has none, and outcomes are upserted row by row (their recorded
dates kept). A file failing its checksum is reported and its version left out: it could never
have served. The files on disk are read, never changed or removed.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from pathlib import Path
from typing import Any

from ml_core.outcomes import OutcomeStore
from ml_core.spec import available_models
from ml_core.store.state import Change, History, Pointers, StateStore
from ml_core.timestamps import utc_iso

_VERSION = re.compile(r"^v(\d+)$")
COLUMNS = ("model", "lead_id", "property_id", "outcome", "occurred_at", "recorded_at", "features", "scored_version", "scored_at")


def import_models(store: StateStore, models_dir: Path) -> dict[str, Any]:
    """Every model's versions, pointers and history; returns what was imported and what was refused."""
    report: dict[str, Any] = {}
    for name in available_models(models_dir):
        root = Path(models_dir) / name
        done: dict[str, Any] = {"versions": [], "skipped": [], "refused": {}}
        known = set(store.versions(name))
        numbered = sorted((int(m.group(1)), p) for p in root.iterdir() if p.is_dir() and (m := _VERSION.match(p.name)))
        for _, path in numbered:
            if path.name in known:
                done["skipped"].append(path.name)
                continue
            problem, card, files = _read_version(path)
            if problem:
                done["refused"][path.name] = problem
            elif store.add_version(name, path.name, card, files):
                done["versions"].append(path.name)
        imported = set(store.versions(name))
        champion = _text(root / "champion")
        challenger = _json(root / "challenger.json")
        entries = [json.loads(line) for line in _text(root / "history.jsonl", "").splitlines() if line.strip()]
        done.update(_pointers(store, name, champion if champion in imported else None,
                              challenger if challenger and challenger.get("version") in imported else None, entries))
        report[name] = done
    return report


def import_outcomes(store: StateStore, path: Path) -> int:
    """Upsert every row of a pre-store outcome file; returns how many rows it held."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = [dict(zip(COLUMNS, row)) for row in conn.execute(f"SELECT {', '.join(COLUMNS)} FROM outcomes")]
    finally:
        conn.close()
    OutcomeStore(store).put(rows)
    return len(rows)


def _pointers(store: StateStore, name: str, champion: str | None, challenger: dict[str, Any] | None,
              entries: list[dict[str, Any]]) -> dict[str, Any]:
    outcome: dict[str, Any] = {"history": 0 if store.history(name) else len(entries)}
    for entry in entries if outcome["history"] else ():
        store.record(name, entry)

    def decide(current: Pointers, _: History) -> Change:
        outcome["champion"] = current.champion or champion
        outcome["challenger"] = (current.challenger or challenger or {}).get("version")
        pointers = Pointers(current.champion or champion, current.challenger or challenger)
        return Change(pointers, {"ts": utc_iso(), "event": "imported", "model": name, "history_entries": outcome["history"]})

    store.change(name, decide)
    return outcome


def _read_version(path: Path) -> tuple[str, dict[str, Any], dict[str, bytes]]:
    card = _json(path / "card.json")
    if not card or not isinstance(card.get("files"), dict):
        return "card.json missing or unreadable", {}, {}
    files: dict[str, bytes] = {}
    for fname, expected in card["files"].items():
        target = path / fname
        if "/" in fname or not target.is_file() or target.is_symlink():
            return f"{fname} is missing", card, {}
        blob = target.read_bytes()
        if hashlib.sha256(blob).hexdigest() != expected:
            return f"{fname} fails its checksum", card, {}
        files[fname] = blob
    return "", card, files


def _text(path: Path, default: str | None = None) -> Any:
    try:
        return path.read_text().strip()
    except OSError:
        return default


def _json(path: Path) -> Any:
    text = _text(path)
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None
