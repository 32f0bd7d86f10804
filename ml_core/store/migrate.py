"""Schema versions of the state store, migrated with Alembic, programmatically (no alembic.ini).

``HEAD`` is the revision this code reads and writes. A process opening a store checks its
revision against ``HEAD`` with one query (workers never import Alembic for it); ``upgrade`` runs
the migrations shipped in ``ml_core/store/migrations``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

REVISIONS = ("0001",)
"""Every migration, oldest first."""
HEAD = REVISIONS[-1]
"""The newest migration in ``migrations/versions`` (a unit test checks they agree)."""
SCRIPTS = Path(__file__).resolve().parent / "migrations"


def revision(conn: Connection) -> str | None:
    """The store's schema revision; ``None`` for an empty database."""
    from sqlalchemy import inspect, text

    if not inspect(conn).has_table("alembic_version"):
        return None
    found = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    return str(found) if found is not None else None


def upgrade(conn: Connection) -> None:
    """Migrate the store ``conn`` is connected to up to the newest revision, in ``conn``'s transaction."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(SCRIPTS))
    config.attributes["connection"] = conn
    command.upgrade(config, "head")


def scripts_head() -> str:
    """The head revision of the shipped migration scripts."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(SCRIPTS))
    return str(ScriptDirectory.from_config(config).get_current_head())
