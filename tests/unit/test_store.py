"""The state store without services (SQLite): schema revisions, and importing a pre-store host's files."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from ml_core import rollout
from ml_core.errors import StoreSchemaError
from ml_core.outcomes import LEGACY_FILE, OutcomeStore
from ml_core.registry import Registry
from ml_core.store.importer import import_models, import_outcomes
from ml_core.store.migrate import HEAD, scripts_head
from ml_core.store.state import StateStore, embedded_url, redacted

from .helpers import MODEL, copy_spec

LEGACY_SCHEMA = """CREATE TABLE outcomes (model TEXT NOT NULL, lead_id TEXT NOT NULL, property_id TEXT NOT NULL DEFAULT '',
    outcome INTEGER NOT NULL, occurred_at TEXT NOT NULL, recorded_at TEXT NOT NULL, features TEXT, scored_version TEXT,
    scored_at TEXT, PRIMARY KEY (model, lead_id, property_id))"""


def test_the_code_knows_the_newest_shipped_migration() -> None:
    assert scripts_head() == HEAD


def test_an_embedded_store_is_migrated_on_first_use_and_a_shared_one_refused_until_upgraded(tmp_path: Path) -> None:
    assert StateStore(embedded_url(tmp_path / "a")).versions(MODEL) == []
    behind = StateStore(embedded_url(tmp_path / "b"), upgrade_embedded=False)
    with pytest.raises(StoreSchemaError, match="run `leadscore db upgrade`"):
        behind.versions(MODEL)
    assert behind.upgrade() == (None, HEAD)
    assert behind.versions(MODEL) == [] and behind.revision() == HEAD


def test_an_embedded_store_is_created_in_wal_mode(tmp_path: Path) -> None:
    # WAL is set once, at creation (it persists in the file): readers never wait on a writer
    StateStore(embedded_url(tmp_path)).versions(MODEL)
    with sqlite3.connect(next(tmp_path.glob("*.sqlite3"))) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_a_password_never_appears_in_the_store_name() -> None:
    assert redacted("postgresql+psycopg://app:s3cret@db:5432/leadscore") == "postgresql+psycopg://app:***@db:5432/leadscore"
    assert "s3cret" not in StateStore("postgresql+psycopg://app:s3cret@db/leadscore").name


def test_a_pre_store_host_is_imported_without_loss_and_importing_again_changes_nothing(registered: Registry, trained, tmp_path: Path) -> None:
    # Given a host's files from before the state store: two versions, pointers, history, outcomes
    registered.register(trained, champion=False)
    old = copy_spec(tmp_path / "old-host").root
    for version in ("v1", "v2"):
        shutil.copytree(registered.version_dir(MODEL, version), old / MODEL / version)
    (old / MODEL / "champion").write_text("v1\n")
    (old / MODEL / "challenger.json").write_text(json.dumps({"version": "v2", "mode": "canary", "percent": 5.0, "since": "2026-01-02T00:00:00Z"}))
    history = [{"ts": "2026-01-01T00:00:00Z", "event": "promoted", "model": MODEL, "version": "v1", "previous": None}]
    (old / MODEL / "history.jsonl").write_text("".join(json.dumps(e) + "\n" for e in history))
    legacy = tmp_path / LEGACY_FILE
    with sqlite3.connect(legacy) as conn:
        conn.execute(LEGACY_SCHEMA)
        conn.execute("INSERT INTO outcomes VALUES ('lead_scorer', 'a', '', 1, '2026-01-03T00:00:00Z', '2026-01-03T00:00:01Z', "
                     "'{\"questions_asked\": 3}', 'v1', '2026-01-02T00:00:00Z')")
    conn.close()
    store = StateStore(embedded_url(tmp_path / "store"))
    # When it is imported, twice
    first = import_models(store, old)
    assert import_models(store, old)[MODEL]["skipped"] == ["v1", "v2"]
    assert import_outcomes(store, legacy) == 1 and import_outcomes(store, legacy) == 1
    # Then everything is there once, verified, and serves
    assert first[MODEL]["versions"] == ["v1", "v2"] and not first[MODEL]["refused"]
    imported = Registry(copy_spec(tmp_path / "new-host").root, store)
    assert imported.champion(MODEL) == "v1" and imported.load(MODEL, "v2").card == registered.card(MODEL, "v2")
    assert rollout.challenger(imported, MODEL) == rollout.Challenger("v2", "canary", 5.0, "2026-01-02T00:00:00Z")
    entries = rollout.history(imported, MODEL)
    assert entries[0] == history[0] and [e["event"] for e in entries] == ["promoted", "imported", "imported"]
    row = OutcomeStore(store).get(MODEL, "a")
    assert row is not None and row["features"] == {"questions_asked": 3} and row["recorded_at"] == "2026-01-03T00:00:01Z"
    assert OutcomeStore(store).counts(MODEL)["outcomes"] == 1


def test_a_version_failing_its_checksum_is_refused_by_the_import(registered: Registry, tmp_path: Path) -> None:
    old = copy_spec(tmp_path / "old-host").root
    shutil.copytree(registered.version_dir(MODEL, "v1"), old / MODEL / "v1")
    (old / MODEL / "v1" / "model.onnx").write_bytes(b"tampered")
    report = import_models(StateStore(embedded_url(tmp_path / "store")), old)
    assert report[MODEL]["refused"] == {"v1": "model.onnx fails its checksum"} and report[MODEL]["versions"] == []


def test_score_client_takes_its_canary_decisions_from_the_state_store(registered: Registry, trained, tmp_path: Path) -> None:
    from leadscore import app
    from leadscore.client.score_client import ScoreClient
    from leadscore.settings import Settings
    from tests.waits import poll

    # Given a web process on another host: its own models directory (specs only), the same store
    registered.register(trained, champion=False)
    web = copy_spec(tmp_path / "web-host").root
    settings = Settings(models_dir=web, database_url=registered.store.url, reload_check_seconds=0.05)
    client = ScoreClient(settings, app)  # the app is never used: deciding needs no broker
    try:
        assert not client._in_canary(MODEL, "lead-1")
        # When the training host puts v2 in a 100 % canary
        rollout.set_challenger(registered, MODEL, "v2", "canary", 100.0)
        # Then the client sends every lead to a worker within its check interval
        poll(lambda: client._in_canary(MODEL, "lead-1"), timeout=10, what="the client seeing the canary")
    finally:
        client.close()


def test_score_client_keeps_deciding_while_the_state_store_is_unreachable(tmp_path: Path) -> None:
    from leadscore import app
    from leadscore.client.score_client import ScoreClient
    from leadscore.settings import Settings

    # A port nobody listens on: connections are refused at once
    settings = Settings(models_dir=copy_spec(tmp_path / "web-host").root, database_url="postgresql+psycopg://postgres@127.0.0.1:1/none")
    client = ScoreClient(settings, app)
    try:
        assert client._in_canary(MODEL, "lead-1") is False  # the last rollout known (none): the champion's cache serves
        assert client._in_canary(MODEL, "lead-2") is False  # and the store is not asked again before breaker_reset_seconds
    finally:
        client.close()
