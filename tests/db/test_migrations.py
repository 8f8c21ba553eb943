"""Migrations on real SQLite and PostgreSQL: up, down, idempotence, rollback, drift."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.orm import Session

import db.models  # noqa: F401  (defines every table on Base.metadata)
from db.base import Base
from db.errors import DatabaseUnavailableError, MigrationError
from db.migrate import (
    MIGRATIONS_DIR,
    alembic_config,
    current_revision,
    downgrade,
    head_revision,
    revision,
    upgrade,
)
from db.repository import count_documents
from db.session import make_engine
from tests.db.helpers import upsert

TABLES = {
    "documents",
    "document_versions",
    "chunks",
    "rate_sheets",
    "rate_rows",
    "conversations",
    "answers",
    "messages",
    "feedback",
    "feedback_events",
    "api_keys",
    "reranker_versions",
    "audit_events",
}


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_migrations_form_one_linear_history() -> None:
    scripts = ScriptDirectory.from_config(alembic_config())
    assert scripts.get_heads() == [head_revision()]
    assert [script.down_revision for script in scripts.walk_revisions()][-1] is None


def test_upgrade_downgrade_upgrade(database_url: str) -> None:
    assert current_revision(database_url) is None

    upgrade(database_url)
    assert current_revision(database_url) == head_revision()
    assert _tables(database_url) == TABLES

    downgrade(database_url, "base")
    assert current_revision(database_url) is None
    assert _tables(database_url) == set()

    upgrade(database_url)
    assert current_revision(database_url) == head_revision()
    assert _tables(database_url) == TABLES


def test_upgrading_twice_keeps_the_data(database_url: str) -> None:
    upgrade(database_url)
    engine = make_engine(database_url)
    try:
        with Session(engine) as session, session.begin():
            upsert(session, "doc", ["one", "two"])
        upgrade(database_url)
        assert current_revision(database_url) == head_revision()
        with Session(engine) as session:
            assert count_documents(session) == 1
    finally:
        engine.dispose()


def test_models_match_the_migrations(database_url: str) -> None:
    upgrade(database_url)
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
    finally:
        engine.dispose()


def test_autogenerating_on_a_current_database_finds_nothing(
    database_url: str, tmp_path: Path
) -> None:
    directory = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, directory, ignore=shutil.ignore_patterns("__pycache__"))
    upgrade(database_url)

    (path,) = revision(database_url, message="no change", rev_id="9999", directory=directory)

    assert path == directory / "versions" / "v9999_no_change.py"
    source = path.read_text()
    assert f"down_revision: str | Sequence[str] | None = {head_revision()!r}" in source
    assert "op." not in source  # no operations: the models and the schema agree


def test_a_failed_upgrade_leaves_the_schema_unchanged(database_url: str) -> None:
    # The last table the migration creates already exists: the upgrade fails after it
    # created the others, and the whole transaction must roll back.
    engine = make_engine(database_url)
    try:
        with engine.begin() as connection:
            connection.execute(text("CREATE TABLE chunks (id INTEGER PRIMARY KEY)"))
    finally:
        engine.dispose()

    with pytest.raises(MigrationError, match="schema is unchanged") as raised:
        upgrade(database_url)

    assert raised.value.__cause__ is not None
    assert current_revision(database_url) is None
    assert _tables(database_url) == {"chunks"}


def test_unreachable_database_is_reported_as_unavailable() -> None:
    url = "postgresql+psycopg://teller:s3cr3t-pw@127.0.0.1:1/teller"
    with pytest.raises(DatabaseUnavailableError) as raised:
        upgrade(url)
    assert "s3cr3t-pw" not in str(raised.value)
    with pytest.raises(DatabaseUnavailableError):
        current_revision(url)
