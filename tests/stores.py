"""State stores for tests: a throwaway registry keeps its embedded store inside its models directory."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ml_core.registry import Registry
from ml_core.store.state import EMBEDDED_FILE, StateStore, embedded_url

_stores: dict[str, StateStore] = {}


def store_url(models_dir: Path) -> str:
    return embedded_url(Path(models_dir))


def registry_at(models_dir: Path) -> Registry:
    """A registry over ``models_dir`` and the SQLite store inside it (one store object per URL per test process)."""
    url = store_url(models_dir)
    store = _stores.get(url) or _stores.setdefault(url, StateStore(url))
    return Registry(Path(models_dir), store)


def edit_card(registry: Registry, version: str, edit: Callable[[dict[str, Any]], None], model: str = "lead_scorer") -> None:
    """Change a version's card in the store (what an attacker with write access to it could do)."""
    from ml_core.store.schema import versions

    card = registry.card(model, version)
    edit(card)
    with registry.store.writing() as conn:
        conn.execute(versions.update().where(versions.c.model == model, versions.c.version == version).values(card=json.dumps(card)))


def fix_up(registry: Registry, version: str, fname: str, blob: bytes, model: str = "lead_scorer") -> None:
    """Replace a cached file and fix up the store's card to match it."""
    (registry.root / model / version / fname).write_bytes(blob)
    edit_card(registry, version, lambda card: card["files"].__setitem__(fname, hashlib.sha256(blob).hexdigest()), model)


def set_pointers(registry: Registry, model: str, **columns: Any) -> None:
    """Write a model's pointer columns directly (champion, challenger, challenger_mode, ...), bypassing every check."""
    from ml_core.store.schema import models

    with registry.store.writing() as conn:
        conn.execute(registry.store.upsert(models).values(model=model).on_conflict_do_nothing())
        conn.execute(models.update().where(models.c.model == model).values(**columns))


def copy_store(src_models_dir: Path, dest_models_dir: Path) -> Registry:
    """Another host's own copy of a test store (SQLite's backup API: consistent while others use it)."""
    import sqlite3

    Path(dest_models_dir).mkdir(parents=True, exist_ok=True)
    src = sqlite3.connect(Path(src_models_dir) / EMBEDDED_FILE)
    dest = sqlite3.connect(Path(dest_models_dir) / EMBEDDED_FILE)
    try:
        src.backup(dest)
    finally:
        src.close()
        dest.close()
    return registry_at(dest_models_dir)


def clone_version(registry: Registry, model: str, version: str, as_model: str) -> None:
    """Register ``model``'s ``version`` again under the name ``as_model`` (same card and files), as its champion."""
    card = {**registry.card(model, version), "name": as_model}
    files = {fname: registry.verified_file(model, version, fname) for fname in card["files"]}
    registry.store.add_version(as_model, version, card, files)
    registry.store.set_champion(as_model, version)
