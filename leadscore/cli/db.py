"""``leadscore db``: the state store's schema, and importing what a host kept on disk before it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from leadscore.settings import get_settings
from ml_core.errors import LeadscoreError
from ml_core.store.state import StateStore


def _store() -> StateStore:
    return StateStore(get_settings().state_url, upgrade_embedded=False)


@click.group()
def db() -> None:
    """The state store (LEADSCORE_DATABASE_URL; default SQLite in the data directory)."""


@db.command()
def upgrade() -> None:
    """Migrate the state store's schema to this release's (run once per release, before workers start)."""
    store = _store()
    try:
        before, after = store.upgrade()
    except LeadscoreError as exc:
        raise click.ClickException(f"{exc.__class__.__name__}: {exc}") from None
    click.echo(f"state store {store.name}: schema {before or 'none'} -> {after}")


@db.command()
def status() -> None:
    """The state store, its schema revision and the one this release needs."""
    from ml_core.store.migrate import HEAD

    store = _store()
    try:
        found = store.revision()
    except LeadscoreError as exc:
        raise click.ClickException(f"{exc.__class__.__name__}: {exc}") from None
    click.echo(json.dumps({"store": store.name, "revision": found, "needed": HEAD, "current": found == HEAD}))


@db.command("import")
@click.option("--models-dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="A models directory with versions, champion, challenger.json, history.jsonl (default: the configured one).")
@click.option("--outcomes", "outcomes_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="A pre-store outcome file (default: <data_dir>/outcomes.sqlite3 when it exists).")
def import_files(models_dir: Path | None, outcomes_file: Path | None) -> None:
    """Import versions, pointers, history and outcomes kept on disk into the state store (safe to repeat)."""
    from ml_core.outcomes import LEGACY_FILE
    from ml_core.store.importer import import_models, import_outcomes

    settings = get_settings()
    store = StateStore(settings.state_url)
    legacy = settings.data_dir / LEGACY_FILE
    outcomes_file = outcomes_file or (legacy if legacy.is_file() else None)
    try:
        models = import_models(store, models_dir or settings.models_dir)
        report: dict[str, Any] = {"store": store.name, "models": models}
        if outcomes_file is not None:
            report["outcomes"] = {"file": str(outcomes_file), "rows": import_outcomes(store, outcomes_file)}
    except LeadscoreError as exc:
        raise click.ClickException(f"{exc.__class__.__name__}: {exc}") from None
    click.echo(json.dumps(report, indent=2))
    if any(m["refused"] for m in models.values()):
        raise SystemExit(1)
