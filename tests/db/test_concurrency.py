"""Two transactions writing the same rows at once (a document, a new conversation), on
real databases."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from db.conversations import add_message, ensure_conversation, recent_messages
from db.errors import ConflictError
from db.migrate import upgrade
from db.repository import count_documents, get_document, list_document_versions, live_chunk_keys
from db.session import make_engine, make_session_factory
from db.types import UpsertResult
from tests.conftest import PostgresServer
from tests.db.helpers import upsert

Factory = sessionmaker[Session]


@pytest.fixture
def pg_factory(postgres_url: str) -> Iterator[Factory]:
    upgrade(postgres_url)
    engine = make_engine(postgres_url)
    try:
        yield make_session_factory(engine)
    finally:
        engine.dispose()


def _wait_until_blocked(server: PostgresServer, database: str) -> None:
    """Wait until a backend on `database` is waiting for a lock held by another."""
    deadline = time.monotonic() + 20
    with server.connect() as monitor:
        while time.monotonic() < deadline:
            waiting = monitor.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = %s AND wait_event_type = 'Lock'",
                (database,),
            ).fetchone()
            if waiting is not None and waiting[0] > 0:
                return
            time.sleep(0.02)
    raise AssertionError("the second transaction never waited for the first one's lock")


def _upsert_in_own_transaction(
    factory: Factory, doc_id: str, texts: list[str], *, read_first: bool = False
) -> UpsertResult:
    with factory.begin() as session:
        # Holding the committed (soon stale) row in the identity map must not matter.
        seen = get_document(session, doc_id=doc_id) if read_first else None
        result = upsert(session, doc_id, texts)
        assert seen is None or seen.version == result.version
        return result


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("second_texts", "status", "version"),
    [(["same"], "unchanged", 1), (["other", "text"], "updated", 2)],
)
def test_concurrent_first_upserts_of_one_id_do_not_duplicate(
    pg_factory: Factory,
    postgres_server: PostgresServer,
    second_texts: list[str],
    status: str,
    version: int,
) -> None:
    database = pg_factory.kw["bind"].url.database
    with ThreadPoolExecutor(max_workers=1) as pool, pg_factory() as first:
        first.begin()
        created = upsert(first, "faq-1", ["same"])  # inserted, not yet committed
        second = pool.submit(_upsert_in_own_transaction, pg_factory, "faq-1", second_texts)
        _wait_until_blocked(postgres_server, database)
        first.commit()
        result = second.result(timeout=30)

    assert created.status == "created"
    assert (result.status, result.version) == (status, version)
    with pg_factory() as session:
        assert count_documents(session) == 1
        versions = list_document_versions(session, doc_id="faq-1")
        assert [v.version for v in versions] == list(range(1, version + 1))
        expected_keys = created.added_keys if status == "unchanged" else result.added_keys
        assert live_chunk_keys(session) == set(expected_keys)


@pytest.mark.postgres
def test_concurrent_updates_are_serialised(
    pg_factory: Factory, postgres_server: PostgresServer
) -> None:
    database = pg_factory.kw["bind"].url.database
    with pg_factory.begin() as session:
        upsert(session, "faq-1", ["v1"])

    with ThreadPoolExecutor(max_workers=1) as pool, pg_factory() as first:
        first.begin()
        second_version = upsert(first, "faq-1", ["v2"])
        third = pool.submit(
            _upsert_in_own_transaction, pg_factory, "faq-1", ["v3"], read_first=True
        )
        _wait_until_blocked(postgres_server, database)
        first.commit()
        third_version = third.result(timeout=30)

    assert (second_version.version, third_version.version) == (2, 3)
    assert third_version.removed_keys == second_version.added_keys
    with pg_factory() as session:
        document = get_document(session, doc_id="faq-1")
        assert document is not None and document.text == "v3"
        assert live_chunk_keys(session) == set(third_version.added_keys)
        assert [v.text for v in list_document_versions(session, doc_id="faq-1")] == [
            "v1",
            "v2",
            "v3",
        ]


def test_sqlite_writer_with_a_stale_snapshot_gets_a_retryable_conflict(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'teller.db'}"
    upgrade(url)
    engine = make_engine(url)
    factory = make_session_factory(engine)
    try:
        with factory() as late:
            late.begin()
            assert get_document(late, doc_id="faq-1") is None  # starts its read snapshot
            with factory.begin() as early:
                upsert(early, "faq-1", ["first"])
            with pytest.raises(ConflictError, match="retry"):
                upsert(late, "faq-1", ["second"])
            late.rollback()

        retried = _upsert_in_own_transaction(factory, "faq-1", ["second"])
        assert (retried.status, retried.version) == ("updated", 2)
        with factory() as session:
            assert count_documents(session) == 1
    finally:
        engine.dispose()


def test_sqlite_writers_through_begin_queue_instead_of_failing(tmp_path: Path) -> None:
    """The write path (`factory.begin()`) takes SQLite's write lock when it begins, so a
    writer that read first cannot be overtaken by one that commits in between (which
    made it fail with "database is locked": 6 of 8 simultaneous chats did)."""
    url = f"sqlite:///{tmp_path / 'teller.db'}"
    upgrade(url)
    engine = make_engine(url)
    factory = make_session_factory(engine)
    read, other_done = threading.Event(), threading.Event()

    def reads_then_writes() -> None:
        with factory.begin() as session:
            assert get_document(session, doc_id="faq-1") is None
            read.set()
            other_done.wait(timeout=1.0)  # the old code let the other writer commit here
            upsert(session, "faq-1", ["first"])

    def writes() -> UpsertResult:
        read.wait(timeout=10)
        try:
            with factory.begin() as session:
                return upsert(session, "faq-2", ["second"])
        finally:
            other_done.set()

    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            first, second = pool.submit(reads_then_writes), pool.submit(writes)
            first.result(timeout=30)
            assert second.result(timeout=30).status == "created"
        with factory() as session:
            assert count_documents(session) == 2
    finally:
        engine.dispose()


def _open_and_say(factory: Factory, conversation_id: str | None, text: str) -> str:
    with factory.begin() as session:
        conversation = ensure_conversation(
            session, conversation_id=conversation_id, channel="web", lock=True
        )
        add_message(session, conversation_id=conversation.id, role="user", text=text)
        return conversation.id


@pytest.mark.postgres
def test_two_first_messages_of_one_new_conversation_both_land(
    pg_factory: Factory, postgres_server: PostgresServer
) -> None:
    """A double send from the widget: the second insert waits for the first, then finds
    its row instead of failing (and losing its message) on the primary key."""
    database = pg_factory.kw["bind"].url.database
    with ThreadPoolExecutor(max_workers=1) as pool, pg_factory() as first:
        first.begin()
        opened = ensure_conversation(first, conversation_id="double-send-1", channel="web")
        add_message(first, conversation_id=opened.id, role="user", text="first")
        second = pool.submit(_open_and_say, pg_factory, "double-send-1", "second")
        _wait_until_blocked(postgres_server, database)
        first.commit()
        assert second.result(timeout=30) == "double-send-1"

    with pg_factory() as session:
        messages = recent_messages(session, conversation_id="double-send-1")
        assert sorted(m.text for m in messages) == ["first", "second"]


def test_opening_a_conversation_reuses_it_and_checks_a_new_one(session_factory: Factory) -> None:
    assert _open_and_say(session_factory, "same-conv-1", "one") == "same-conv-1"
    assert _open_and_say(session_factory, "same-conv-1", "two") == "same-conv-1"
    generated = _open_and_say(session_factory, None, "three")
    assert generated != "same-conv-1" and len(generated) == 36
    with session_factory() as session:
        assert [m.text for m in recent_messages(session, conversation_id="same-conv-1")] == [
            "one",
            "two",
        ]
        with pytest.raises(ValueError, match="channel 'sms'"):
            ensure_conversation(session, conversation_id="new-conv-22", channel="sms")
