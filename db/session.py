"""Engines and sessions for SQLite (default, one file in the data dir) and PostgreSQL."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

from sqlalchemy import create_engine, event, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

from db.errors import DatabaseError, safe_url, unavailable

_WRITES: Final = "teller_writes"

SQLITE_BUSY_TIMEOUT_MS = 5000


def normalize_url(url: str | URL) -> URL:
    """Parse a database URL; plain `postgresql://` and `postgres://` get the psycopg 3 driver.

    Raises `DatabaseError` when the URL cannot be parsed.
    """
    try:
        parsed = make_url(url)
    except sa_exc.ArgumentError as error:
        raise DatabaseError(
            f"invalid database URL {safe_url(url)!r}: expected e.g. "
            "sqlite:////path/to/teller.db or postgresql://user:password@host:5432/teller"
        ) from error
    if parsed.drivername in {"postgresql", "postgres"}:
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def _sqlite_file(url: URL) -> Path | None:
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    if url.query.get("mode") == "memory":
        return None
    return Path(database).expanduser()


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide where transactions start, so that
        # DDL (migrations) and SAVEPOINTs are transactional. This is the recipe from the
        # SQLAlchemy SQLite dialect documentation.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA journal_mode=WAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        # Write transactions take the write lock at once and wait for it (busy_timeout).
        # Begun deferred, a writer whose read snapshot went stale when another committed
        # fails at its first write ("database is locked") instead of waiting: that made
        # 6 of 8 simultaneous chats fail.
        writes = connection.get_execution_options().get(_WRITES, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if writes else "BEGIN")


def make_engine(url: str | URL, **kwargs: Any) -> Engine:
    """Create an engine for `url`, configured for Teller.

    SQLite: the file's parent directory is created; connections may cross threads;
    `foreign_keys=ON`, `journal_mode=WAL` and `busy_timeout=5000` are set on every
    connection; transactions begin explicitly so DDL and savepoints are transactional.
    PostgreSQL: `postgresql://` uses psycopg 3, and pooled connections are pinged before
    use so a restarted server does not surface as an error. Extra `kwargs` go to
    `sqlalchemy.create_engine`. Nothing connects until first use (see `check_connection`).
    """
    parsed = normalize_url(url)
    options: dict[str, Any] = {}
    if parsed.get_backend_name() == "sqlite":
        path = _sqlite_file(parsed)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        options["connect_args"] = {"check_same_thread": False}
    elif parsed.get_backend_name() == "postgresql":
        options["pool_pre_ping"] = True
    options.update(kwargs)
    try:
        engine = create_engine(parsed, **options)
    except (sa_exc.ArgumentError, sa_exc.NoSuchModuleError) as error:
        raise DatabaseError(
            f"cannot use database URL {safe_url(parsed)!r}: {error}; Teller supports "
            "sqlite:///... and postgresql+psycopg://..."
        ) from error
    if engine.dialect.name == "sqlite":
        _configure_sqlite(engine)
    return engine


class SessionFactory(sessionmaker[Session]):
    """`sessionmaker` whose `begin()`, the way Teller writes, marks the transaction as a
    write: on SQLite it starts with ``BEGIN IMMEDIATE``, so concurrent writers queue for
    the lock instead of failing. Plain sessions (reads) begin as before; elsewhere the
    mark changes nothing."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(bind=engine, expire_on_commit=False)
        self._writer = engine.execution_options(**{_WRITES: True})

    @contextlib.contextmanager
    def begin(self) -> Iterator[Session]:
        with self(bind=self._writer) as session, session.begin():
            yield session


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """A `SessionFactory` bound to `engine`; objects stay readable after commit."""
    return SessionFactory(engine)


def check_connection(engine: Engine) -> None:
    """Connect and run `SELECT 1`; raise `DatabaseUnavailableError` when that fails.

    Call it at start-up so a wrong URL or a stopped server is reported once, clearly,
    instead of on the first request.
    """
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except sa_exc.SQLAlchemyError as error:
        raise unavailable(engine.url, error) from error
