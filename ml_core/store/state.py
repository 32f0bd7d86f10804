"""``StateStore``: one database every host of a fleet reads and writes (see the package docstring).

Reads run in plain transactions; writes in ``writing()``, which on SQLite starts with
``BEGIN IMMEDIATE`` (writers queue on the busy timeout instead of failing midway) and on
PostgreSQL locks the model's row. A process opens its engine on first use and again after a
fork (connections never cross a fork). Any failure to reach the database is a
``StoreUnavailableError`` naming the store (its URL without the password).
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ml_core.errors import StoreSchemaError, StoreUnavailableError
from ml_core.store.migrate import HEAD, REVISIONS, revision, upgrade

if TYPE_CHECKING:
    from sqlalchemy import Table
    from sqlalchemy.dialects.postgresql import Insert
    from sqlalchemy.engine import Connection, Engine

_PASSWORD = re.compile(r"(://[^:/@]*):[^@]*@")
BUSY_TIMEOUT_SECONDS = 30.0
CONNECT_TIMEOUT_SECONDS = 3


EMBEDDED_FILE = "leadscore.sqlite3"


def embedded_url(directory: Path) -> str:
    """The SQLite store kept in ``directory`` (the default store lives in the data directory)."""
    return f"sqlite:///{Path(directory).resolve() / EMBEDDED_FILE}"


def redacted(url: str) -> str:
    """``url`` without its password: what errors and logs may name."""
    return _PASSWORD.sub(r"\1:***@", url)


@dataclass(frozen=True)
class Pointers:
    """What a model serves: the champion, and the challenger (``{"version", "mode", "percent", "since"}``)."""

    champion: str | None = None
    challenger: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Change:
    """A pointer change and the history entry written in the same transaction."""

    pointers: Pointers
    entry: dict[str, Any]


History = Callable[[], list[dict[str, Any]]]


class StateStore:
    def __init__(self, url: str, *, upgrade_embedded: bool = True) -> None:
        """``upgrade_embedded``: an embedded (SQLite) store behind the code's schema is migrated by the
        first process that opens it, under a file lock; a shared one only by ``leadscore db upgrade``."""
        self.url = url
        self.name = redacted(url)
        self.embedded = url.startswith("sqlite")
        self.upgrade_embedded = upgrade_embedded
        self._engine: Engine | None = None
        self._pid = 0
        self._lock = threading.Lock()

    # --- connections -------------------------------------------------------------------------

    def engine(self) -> Engine:
        """This process's engine, created (and the schema checked) on first use and after a fork."""
        engine = self._engine
        if engine is not None and self._pid == os.getpid():
            return engine
        with self._lock:
            if self._engine is None or self._pid != os.getpid():
                if self._engine is not None:
                    self._engine.dispose(close=False)  # the parent's connections stay the parent's
                fresh = self._create()
                try:
                    with self._errors():
                        self._check(fresh)
                except BaseException:
                    fresh.dispose()
                    raise
                self._engine, self._pid = fresh, os.getpid()
            return self._engine

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        with self._errors(), self.engine().connect() as conn:
            yield conn

    @contextmanager
    def writing(self) -> Iterator[Connection]:
        """One write transaction, committed when the block ends without an exception."""
        with self._errors(), self.engine().connect() as conn:
            conn = conn.execution_options(leadscore_write=True)
            with conn.begin():
                yield conn

    def upsert(self, table: Table) -> Insert:
        """An ``INSERT`` with this dialect's ``on_conflict_do_*`` (SQLite and PostgreSQL agree on it)."""
        if self.embedded:
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            return sqlite_insert(table)  # type: ignore[return-value]
        from sqlalchemy.dialects.postgresql import insert

        return insert(table)

    def revision(self) -> str | None:
        engine = self._create()
        try:
            with self._errors(), engine.connect() as conn:
                return revision(conn)
        finally:
            engine.dispose()

    def upgrade(self) -> tuple[str | None, str]:
        """Migrate to the newest schema; the revisions before and after."""
        engine = self._create()
        try:
            with self._errors(), self._migration_lock(), engine.connect() as conn:
                conn = conn.execution_options(leadscore_write=True)
                with conn.begin():
                    before = revision(conn)
                    upgrade(conn)
        finally:
            engine.dispose()
        return before, HEAD

    def close(self) -> None:
        with self._lock:
            if self._engine is not None:
                self._engine.dispose()
                self._engine = None

    def _create(self) -> Engine:
        from sqlalchemy import create_engine, event
        from sqlalchemy.engine import make_url

        parsed = make_url(self.url)
        if parsed.get_backend_name() == "sqlite":
            if parsed.database:
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(parsed, connect_args={"timeout": BUSY_TIMEOUT_SECONDS, "check_same_thread": False})

            @event.listens_for(engine, "connect")
            def _connect(dbapi: Any, _: Any) -> None:
                dbapi.isolation_level = None  # transactions are begun below, the way each needs
                cursor = dbapi.cursor()
                # WAL is set once, when the store is created (_check): it persists in the file, and
                # setting it on every connect can fail at once with "database is locked", ignoring
                # the busy timeout, while another process writes.
                cursor.execute("PRAGMA synchronous=FULL")  # a commit returns once the log is fsynced
                cursor.close()

            @event.listens_for(engine, "begin")
            def _begin(conn: Connection) -> None:
                conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("leadscore_write") else "BEGIN")

            return engine
        if parsed.get_backend_name() == "postgresql":
            return create_engine(parsed, pool_pre_ping=True, pool_size=2, max_overflow=8,
                                 connect_args={"connect_timeout": CONNECT_TIMEOUT_SECONDS})
        raise StoreSchemaError(self.name, "unsupported database: use sqlite:///PATH or postgresql+psycopg://...")

    def _check(self, engine: Engine) -> None:
        with engine.connect() as conn:
            found = revision(conn)
        if found == HEAD:
            return
        if found is not None and found not in REVISIONS:
            raise StoreSchemaError(self.name, f"schema revision {found} is newer than this leadscore knows ({HEAD}); upgrade leadscore")
        if self.embedded and self.upgrade_embedded:
            with self._migration_lock(), engine.connect() as conn:
                # on the driver's connection: outside any transaction, as SQLite requires
                driver = conn.connection.driver_connection
                if driver is not None:
                    driver.execute("PRAGMA journal_mode=WAL")
                conn = conn.execution_options(leadscore_write=True)
                with conn.begin():
                    upgrade(conn)  # a no-op when a process that held the lock before us did it
            return
        raise StoreSchemaError(self.name, f"schema is at revision {found or 'none (empty database)'}, this leadscore needs {HEAD}; "
                                          "run `leadscore db upgrade`")

    @contextmanager
    def _migration_lock(self) -> Iterator[None]:
        """Embedded stores: one migrating process at a time (PostgreSQL's DDL locks serialize its own)."""
        from sqlalchemy.engine import make_url

        database = make_url(self.url).database if self.embedded else None
        if not database:
            yield
            return
        fd = os.open(f"{database}.migrate.lock", os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    @contextmanager
    def _errors(self) -> Iterator[None]:
        from sqlalchemy.exc import InterfaceError, OperationalError

        try:
            yield
        except (OperationalError, InterfaceError) as exc:
            cause = exc.orig if exc.orig is not None else exc
            detail = str(cause).strip().splitlines()[0][:200] if str(cause).strip() else ""
            raise StoreUnavailableError(self.name, f"{cause.__class__.__name__}: {detail}") from None

    # --- versions and blobs -------------------------------------------------------------------

    def versions(self, model: str) -> list[str]:
        from sqlalchemy import select

        from ml_core.store.schema import versions

        with self.reading() as conn:
            rows = conn.execute(select(versions.c.version).where(versions.c.model == model).order_by(versions.c.number))
            return [r[0] for r in rows]

    def card(self, model: str, version: str) -> dict[str, Any] | None:
        from sqlalchemy import select

        from ml_core.store.schema import versions

        with self.reading() as conn:
            found = conn.execute(select(versions.c.card).where(versions.c.model == model, versions.c.version == version)).scalar()
        return json.loads(found) if found is not None else None

    def add_version(self, model: str, version: str, card: Mapping[str, Any], files: Mapping[str, bytes]) -> bool:
        """Store a version's card and files in one transaction; ``False`` when ``version`` is taken."""
        import hashlib

        from sqlalchemy import select
        from sqlalchemy.exc import IntegrityError

        from ml_core.store.schema import blobs, versions

        try:
            with self.writing() as conn:
                if conn.execute(select(versions.c.version).where(versions.c.model == model, versions.c.version == version)).first():
                    return False
                for blob in files.values():
                    sha = hashlib.sha256(blob).hexdigest()
                    conn.execute(self.upsert(blobs).values(sha256=sha, size=len(blob), data=blob).on_conflict_do_nothing())
                conn.execute(versions.insert().values(model=model, version=version, number=int(version[1:]),
                                                      card=json.dumps(card), created_at=str(card.get("created_at", ""))))
        except IntegrityError:  # PostgreSQL: another host inserted this version first
            return False
        return True

    def blob(self, sha256: str) -> bytes | None:
        from sqlalchemy import select

        from ml_core.store.schema import blobs

        with self.reading() as conn:
            found = conn.execute(select(blobs.c.data).where(blobs.c.sha256 == sha256)).scalar()
        return bytes(found) if found is not None else None

    # --- pointers and history -----------------------------------------------------------------

    def models(self) -> list[str]:
        from sqlalchemy import select, union

        from ml_core.store.schema import models, versions

        with self.reading() as conn:
            return sorted(r[0] for r in conn.execute(union(select(models.c.model), select(versions.c.model))))

    def pointers(self, model: str) -> Pointers:
        from sqlalchemy import select

        from ml_core.store.schema import models

        with self.reading() as conn:
            row = conn.execute(select(models).where(models.c.model == model)).first()
        return _pointers(row)

    def set_champion(self, model: str, version: str) -> None:
        from sqlalchemy import update

        from ml_core.store.schema import models

        with self.writing() as conn:
            conn.execute(self.upsert(models).values(model=model).on_conflict_do_nothing())
            conn.execute(update(models).where(models.c.model == model).values(champion=version))

    def change(self, model: str, decide: Callable[[Pointers, History], Change]) -> dict[str, Any]:
        """Lock the model's pointers, let ``decide`` (which may raise) compute the new ones from the
        current ones and the history, write both; one transaction. Returns the history entry."""
        from sqlalchemy import select, update

        from ml_core.store.schema import models

        with self.writing() as conn:
            conn.execute(self.upsert(models).values(model=model).on_conflict_do_nothing())
            row = conn.execute(select(models).where(models.c.model == model).with_for_update()).first()
            change = decide(_pointers(row), lambda: self._history(conn, model))
            challenger = change.pointers.challenger or {}
            conn.execute(update(models).where(models.c.model == model).values(
                champion=change.pointers.champion, challenger=challenger.get("version"), challenger_mode=challenger.get("mode"),
                challenger_percent=challenger.get("percent"), challenger_since=challenger.get("since"),
            ))
            self._append(conn, model, change.entry)
        return change.entry

    def record(self, model: str, entry: dict[str, Any]) -> None:
        with self.writing() as conn:
            self._append(conn, model, entry)

    def history(self, model: str) -> list[dict[str, Any]]:
        with self.reading() as conn:
            return self._history(conn, model)

    def _append(self, conn: Connection, model: str, entry: dict[str, Any]) -> None:
        from ml_core.store.schema import history

        conn.execute(history.insert().values(model=model, ts=str(entry.get("ts", "")), event=str(entry.get("event", "")),
                                             entry=json.dumps(entry, separators=(",", ":"))))

    def _history(self, conn: Connection, model: str) -> list[dict[str, Any]]:
        from sqlalchemy import select

        from ml_core.store.schema import history

        rows = conn.execute(select(history.c.entry).where(history.c.model == model).order_by(history.c.id))
        return [json.loads(r[0]) for r in rows]


def _pointers(row: Any) -> Pointers:
    if row is None:
        return Pointers()
    challenger = None
    if row.challenger:
        challenger = {"version": row.challenger, "mode": row.challenger_mode or "none", "percent": float(row.challenger_percent or 0.0),
                      "since": row.challenger_since or ""}
    return Pointers(champion=row.champion, challenger=challenger)
