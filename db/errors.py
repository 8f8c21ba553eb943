"""Errors raised by the db package. Messages say what the user can do.

SQLAlchemy and driver errors are converted here, in one place, and raised `from` the
original so the traceback keeps the driver's details.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, make_url

# SQLSTATE codes a caller can fix by retrying the whole transaction.
_RETRYABLE_SQLSTATES = {
    "40001",  # serialization_failure
    "40P01",  # deadlock_detected
    "55P03",  # lock_not_available
}
# SQLite result codes that mean "another connection holds the write lock".
_SQLITE_BUSY = {"SQLITE_BUSY", "SQLITE_BUSY_SNAPSHOT", "SQLITE_BUSY_RECOVERY", "SQLITE_LOCKED"}


class DatabaseError(Exception):
    """Base class for database errors."""


class DatabaseUnavailableError(DatabaseError):
    """The database cannot be reached or opened."""


class MigrationError(DatabaseError):
    """A schema migration failed; the database was left at its previous revision."""


class ConflictError(DatabaseError):
    """A concurrent transaction changed the same rows; roll back and retry."""


class NotFoundError(DatabaseError):
    """The requested row does not exist."""


class DocumentNotFound(NotFoundError):
    """No live document has the given id."""


def safe_url(url: str | URL) -> str:
    """Render a database URL for messages and logs, with the password masked."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except sa_exc.ArgumentError:
        return "<unparseable database URL>"


def unavailable(url: str | URL, error: BaseException) -> DatabaseUnavailableError:
    """The error to raise when connecting to `url` failed with `error`."""
    cause = getattr(error, "orig", None) or error
    return DatabaseUnavailableError(
        f"cannot connect to the database at {safe_url(url)}: {cause}. "
        "Check that the server is running and reachable and that TELLER_DATABASE_URL "
        "(host, port, database name, user, password) is correct."
    )


def _sqlstate(error: sa_exc.DBAPIError) -> str | None:
    state = getattr(error.orig, "sqlstate", None)
    return state if isinstance(state, str) else None


def _sqlite_code(error: sa_exc.DBAPIError) -> str | None:
    name = getattr(error.orig, "sqlite_errorname", None)
    return name if isinstance(name, str) else None


def is_retryable(error: sa_exc.DBAPIError) -> bool:
    """Whether `error` is a concurrency conflict that a retry of the transaction can fix."""
    return _sqlstate(error) in _RETRYABLE_SQLSTATES or _sqlite_code(error) in _SQLITE_BUSY


def is_unavailable(error: sa_exc.DBAPIError) -> bool:
    """Whether `error` means the server is unreachable or the connection was lost."""
    if error.connection_invalidated:
        return True
    state = _sqlstate(error)
    if state is not None:
        # Class 08: connection exception; 57P0x: server shutting down or restarting.
        return state.startswith("08") or state in {"57P01", "57P02", "57P03"}
    if _sqlite_code(error) in {"SQLITE_CANTOPEN", "SQLITE_READONLY", "SQLITE_IOERR"}:
        return True
    # psycopg reports "connection refused" and friends without a SQLSTATE.
    return isinstance(error, sa_exc.OperationalError) and _sqlite_code(error) is None


def convert(error: sa_exc.SQLAlchemyError, *, action: str) -> DatabaseError:
    """Map a SQLAlchemy error to the Teller error a caller can act on.

    `action` completes the sentence "the database failed while ...".
    """
    if isinstance(error, sa_exc.DBAPIError):
        if is_retryable(error):
            return ConflictError(
                f"a concurrent transaction touched the same rows while {action}; "
                f"roll back and retry ({error.orig})"
            )
        if is_unavailable(error):
            return DatabaseUnavailableError(
                f"lost the database connection while {action} ({error.orig}); check that "
                "the database server is running and reachable, then retry"
            )
        if isinstance(error, sa_exc.IntegrityError):
            return DatabaseError(f"a database constraint was violated while {action}: {error.orig}")
        return DatabaseError(f"the database failed while {action}: {error.orig}")
    return DatabaseError(f"the database failed while {action}: {error}")


@contextmanager
def translating(action: str) -> Iterator[None]:
    """Convert SQLAlchemy errors raised in the block into Teller database errors."""
    try:
        yield
    except sa_exc.SQLAlchemyError as error:
        raise convert(error, action=action) from error
