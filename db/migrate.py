"""Schema migrations, configured in code: the Alembic scripts ship inside this package.

Every command runs in one transaction, so a failed upgrade leaves the schema at its
previous revision. SQLite gets transactional DDL from the engine set-up in
`db.session`; foreign keys are switched off while tables are rebuilt (batch mode) and
checked before commit, as the SQLite documentation prescribes. On PostgreSQL an
advisory lock makes replicas that start together migrate one after the other.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import exc as sa_exc
from sqlalchemy import text
from sqlalchemy.engine import URL, Connection, Engine

from db.errors import DatabaseError, MigrationError, is_unavailable, safe_url, unavailable
from db.session import make_engine

MIGRATIONS_DIR = Path(__file__).resolve().with_name("migrations")
# pg_advisory_xact_lock key: the bytes of "tellerdb" as a signed 64-bit integer.
_MIGRATION_LOCK_KEY = int.from_bytes(b"tellerdb", "big", signed=True)


def alembic_config(
    connection: Connection | None = None, *, directory: Path = MIGRATIONS_DIR
) -> Config:
    """An Alembic `Config` for Teller's migrations, without any ini file.

    `connection`, when given, is the one `env.py` runs the migrations on; `directory`
    holds `env.py` and `versions/`.
    """
    config = Config()
    # Config values go through configparser interpolation: escape "%".
    config.set_main_option("script_location", str(directory).replace("%", "%%"))
    config.set_main_option("path_separator", "os")
    # A module name must be an identifier for mypy: "v0002_add_feedback.py".
    config.set_main_option("file_template", "v%%(rev)s_%%(slug)s")
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision shipped with this version of Teller."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise MigrationError(f"no migrations found in {MIGRATIONS_DIR}")
    return head


def _connect(engine: Engine) -> Connection:
    try:
        return engine.connect()
    except sa_exc.SQLAlchemyError as error:
        raise unavailable(engine.url, error) from error


def _sqlite_foreign_keys(connection: Connection, *, enabled: bool) -> None:
    # A no-op inside a transaction, so it goes straight to the driver, before BEGIN.
    driver_connection = connection.connection.driver_connection
    assert driver_connection is not None
    driver_connection.execute(f"PRAGMA foreign_keys={'ON' if enabled else 'OFF'}")


def _check_sqlite_foreign_keys(connection: Connection) -> None:
    violations = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if violations:
        shown = ", ".join(f"{row[0]} rowid {row[1]} -> {row[2]}" for row in violations[:5])
        raise MigrationError(f"the migration left rows that break foreign keys: {shown}")


def _run(
    url: str | URL,
    action: str,
    operation: Callable[[Config], object],
    *,
    directory: Path = MIGRATIONS_DIR,
) -> None:
    """Run one Alembic command on `url` inside a single transaction."""
    engine = make_engine(url)
    try:
        with _connect(engine) as connection:
            sqlite = connection.dialect.name == "sqlite"
            if sqlite:
                _sqlite_foreign_keys(connection, enabled=False)
            try:
                with connection.begin():
                    if connection.dialect.name == "postgresql":
                        connection.execute(
                            text("SELECT pg_advisory_xact_lock(:key)"),
                            {"key": _MIGRATION_LOCK_KEY},
                        )
                    operation(alembic_config(connection, directory=directory))
                    if sqlite:
                        _check_sqlite_foreign_keys(connection)
            finally:
                if sqlite and not connection.invalidated:
                    _sqlite_foreign_keys(connection, enabled=True)
    except DatabaseError:
        raise
    except sa_exc.DBAPIError as error:
        if is_unavailable(error):
            raise unavailable(engine.url, error) from error
        raise _failed(url, action, error) from error
    except Exception as error:  # the migration boundary: every failure is a MigrationError
        raise _failed(url, action, error) from error
    finally:
        engine.dispose()


def _failed(url: str | URL, action: str, error: BaseException) -> MigrationError:
    return MigrationError(
        f"{action} failed on {safe_url(url)}: {error}. The transaction was rolled back; "
        "the schema is unchanged. Fix the cause and run the migration again."
    )


def upgrade(url: str | URL, revision: str = "head") -> None:
    """Upgrade the schema at `url` to `revision`; a database already there is left as is."""
    _run(url, f"upgrading to {revision}", lambda config: command.upgrade(config, revision))


def downgrade(url: str | URL, revision: str) -> None:
    """Downgrade the schema at `url` to `revision` ("base" removes every table)."""
    _run(url, f"downgrading to {revision}", lambda config: command.downgrade(config, revision))


def current_revision(url: str | URL) -> str | None:
    """The revision the database at `url` is at; None when it was never migrated."""
    engine = make_engine(url)
    try:
        with _connect(engine) as connection:
            return MigrationContext.configure(connection).get_current_revision()
    except DatabaseError:
        raise
    except sa_exc.DBAPIError as error:
        if is_unavailable(error):
            raise unavailable(engine.url, error) from error
        raise _failed(url, "reading the schema revision", error) from error
    except Exception as error:
        raise _failed(url, "reading the schema revision", error) from error
    finally:
        engine.dispose()


def revision(
    url: str | URL,
    *,
    message: str,
    rev_id: str | None = None,
    directory: Path = MIGRATIONS_DIR,
) -> list[Path]:
    """Autogenerate a migration from the models' difference with the database at `url`.

    For developers: the database must be at head. Check the generated file by hand and
    test it on SQLite and PostgreSQL. Returns the paths of the files written into
    `directory`/versions.
    """
    paths: list[Path] = []

    def operation(config: Config) -> None:
        written = command.revision(config, message=message, autogenerate=True, rev_id=rev_id)
        scripts = written if isinstance(written, list) else [written]
        paths.extend(Path(script.path) for script in scripts if script is not None)

    _run(url, "generating a revision", operation, directory=directory)
    return paths
