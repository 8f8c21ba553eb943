"""Engines, connection checks and timestamps on real SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from db.errors import DatabaseError, DatabaseUnavailableError
from db.models import Document
from db.repository import get_document
from db.session import check_connection, make_engine
from tests.db.helpers import upsert

UNREACHABLE_POSTGRES = "postgresql://teller:s3cr3t-pw@127.0.0.1:1/teller"


def test_sqlite_engine_creates_the_directory_and_sets_pragmas(tmp_path: Path) -> None:
    path = tmp_path / "data" / "nested" / "teller.db"
    engine = make_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000
        assert path.is_file()
    finally:
        engine.dispose()


def test_sqlite_ddl_is_transactional(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'teller.db'}")
    try:
        with pytest.raises(RuntimeError), engine.begin() as connection:
            connection.execute(text("CREATE TABLE scratch (id INTEGER PRIMARY KEY)"))
            raise RuntimeError("roll back")
        assert not inspect(engine).has_table("scratch")
    finally:
        engine.dispose()


def test_plain_postgresql_url_uses_psycopg() -> None:
    engine = make_engine("postgresql://teller@127.0.0.1/teller")
    try:
        assert engine.dialect.driver == "psycopg"
    finally:
        engine.dispose()


def test_invalid_url_is_a_database_error() -> None:
    with pytest.raises(DatabaseError, match="invalid database URL"):
        make_engine("not a url")
    with pytest.raises(DatabaseError, match="Teller supports"):
        make_engine("nosuchdb://host/x")


def test_check_connection_passes_on_a_live_database(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        check_connection(engine)
    finally:
        engine.dispose()


def test_check_connection_names_the_url_without_its_password() -> None:
    engine = make_engine(UNREACHABLE_POSTGRES)
    try:
        with pytest.raises(DatabaseUnavailableError) as raised:
            check_connection(engine)
    finally:
        engine.dispose()
    message = str(raised.value)
    assert "s3cr3t-pw" not in message
    assert "teller:***@127.0.0.1:1/teller" in message
    assert "TELLER_DATABASE_URL" in message
    assert raised.value.__cause__ is not None


def test_check_connection_on_an_unopenable_sqlite_file(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}")  # a directory, not a file
    try:
        with pytest.raises(DatabaseUnavailableError, match="cannot connect"):
            check_connection(engine)
    finally:
        engine.dispose()


def test_timestamps_come_back_aware_in_utc(session_factory: sessionmaker[Session]) -> None:
    before = dt.datetime.now(dt.UTC)
    with session_factory.begin() as session:
        upsert(session, "doc", ["text"])
    with session_factory() as session:
        document = get_document(session, doc_id="doc")
        assert document is not None
        assert document.created_at.utcoffset() == dt.timedelta(0)
        assert before - dt.timedelta(seconds=5) <= document.created_at <= dt.datetime.now(dt.UTC)


def test_non_utc_timestamps_are_stored_as_the_same_instant(engine: Engine) -> None:
    paris = dt.timezone(dt.timedelta(hours=2))
    moment = dt.datetime(2024, 6, 1, 12, 30, tzinfo=paris)
    with Session(engine) as session, session.begin():
        session.add(_document("tz", created_at=moment))
    with Session(engine) as session:
        stored = session.get_one(Document, "tz")
        assert stored.created_at == moment
        assert stored.created_at.tzinfo == dt.UTC
        assert stored.created_at.hour == 10


def test_naive_timestamps_are_refused(engine: Engine) -> None:
    with Session(engine) as session:
        session.add(_document("naive", created_at=dt.datetime(2024, 6, 1, 12, 30)))
        with pytest.raises(sa_exc.StatementError, match="naive datetime"):
            session.flush()


def test_sessions_keep_objects_readable_after_commit(
    session_factory: sessionmaker[Session],
) -> None:
    with session_factory() as session:
        with session.begin():
            upsert(session, "doc", ["text"])
            document = get_document(session, doc_id="doc")
        assert document is not None
        session.close()
        assert document.title == "Title"  # expire_on_commit=False: no reload needed


def _document(doc_id: str, *, created_at: dt.datetime) -> Document:
    return Document(
        id=doc_id,
        source="s",
        title="t",
        text="x",
        meta={},
        content_hash="h",
        version=1,
        created_at=created_at,
        updated_at=created_at,
    )
