"""Repository functions on real SQLite and PostgreSQL databases."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from db.errors import DatabaseError, DocumentNotFound
from db.models import Chunk
from db.repository import (
    count_chunks,
    count_documents,
    delete_document,
    embedding_from_bytes,
    embedding_to_bytes,
    get_chunk_versions,
    get_document,
    get_document_version,
    iter_chunks,
    list_document_versions,
    list_documents,
    live_chunk_keys,
    load_chunks,
    upsert_document,
)
from db.types import ChunkVersion, NewChunk
from tests.db.helpers import make_chunks, upsert

Factory = sessionmaker[Session]


def test_create_stores_document_version_and_chunks(session_factory: Factory) -> None:
    with session_factory.begin() as session:
        result = upsert(session, "faq-1", ["Open an account.", "Close it."])

    assert result.status == "created"
    assert (result.doc_id, result.version, result.removed_keys) == ("faq-1", 1, [])
    assert len(result.added_keys) == 2
    with session_factory() as session:
        assert (count_documents(session), count_chunks(session)) == (1, 2)
        assert live_chunk_keys(session) == set(result.added_keys)
        document = get_document(session, doc_id="faq-1")
        assert document is not None
        assert (document.version, document.source, document.meta) == (
            1,
            "faq-1.md",
            {"product": "savings"},
        )
        assert document.text == "Open an account.\n\nClose it."
        assert document.deleted_at is None
        first, second = load_chunks(session, keys=result.added_keys)
        assert [first.id, second.id] == result.added_keys
        assert (first.ordinal, first.version, first.text) == (0, 1, "Open an account.")
        assert first.section_path == ["Accounts", "Section 0"]
        assert first.context == "Doc | Section 0"
        assert first.meta == {"page": 1}
        assert first.embedding_model == "test-model"
        assert first.embedding is not None
        np.testing.assert_array_equal(embedding_from_bytes(first.embedding), np.full(4, 0.5))
        assert first.document.title == "Title"
        assert [v.version for v in list_document_versions(session, doc_id="faq-1")] == [1]


def test_same_hash_is_unchanged_and_writes_nothing(session_factory: Factory) -> None:
    with session_factory.begin() as session:
        created = upsert(session, "faq-1", ["a", "b"])
    with session_factory() as session:
        before = get_document(session, doc_id="faq-1")
    with session_factory.begin() as session:
        result = upsert(session, "faq-1", ["a", "b"])

    assert (result.status, result.version, result.added_keys, result.removed_keys) == (
        "unchanged",
        1,
        [],
        [],
    )
    with session_factory() as session:
        after = get_document(session, doc_id="faq-1")
        assert before is not None and after is not None
        assert after.updated_at == before.updated_at
        assert live_chunk_keys(session) == set(created.added_keys)
        assert len(list_document_versions(session, doc_id="faq-1")) == 1


def test_new_hash_replaces_the_chunks_and_keeps_the_history(session_factory: Factory) -> None:
    with session_factory.begin() as session:
        first = upsert(session, "faq-1", ["old one", "old two"])
    with session_factory.begin() as session:
        second = upsert(session, "faq-1", ["new one", "new two", "new three"], title="New")

    assert (second.status, second.version) == ("updated", 2)
    assert second.removed_keys == sorted(first.added_keys)
    assert len(second.added_keys) == 3
    assert set(second.added_keys).isdisjoint(first.added_keys)
    with session_factory() as session:
        assert live_chunk_keys(session) == set(second.added_keys)
        assert load_chunks(session, keys=first.added_keys) == []
        assert count_chunks(session) == 3
        assert {c.version for c in load_chunks(session, keys=second.added_keys)} == {2}
        document = get_document(session, doc_id="faq-1")
        assert document is not None
        assert (document.version, document.title) == (2, "New")
        versions = list_document_versions(session, doc_id="faq-1")
        assert [(v.version, v.title, v.text) for v in versions] == [
            (1, "Title", "old one\n\nold two"),
            (2, "New", "new one\n\nnew two\n\nnew three"),
        ]
        old = get_document_version(session, doc_id="faq-1", version=1)
        assert old is not None and old.content_hash != document.content_hash


def test_chunk_keys_are_never_reused(session_factory: Factory) -> None:
    with session_factory.begin() as session:
        first = upsert(session, "faq-1", ["a", "b"])
    with session_factory.begin() as session:
        delete_document(session, doc_id="faq-1")  # frees the highest keys
    with session_factory.begin() as session:
        second = upsert(session, "faq-2", ["c", "d"])
    assert min(second.added_keys) > max(first.added_keys)


def test_delete_is_soft_and_removes_the_chunks(session_factory: Factory) -> None:
    with session_factory.begin() as session:
        created = upsert(session, "faq-1", ["a", "b"])
        upsert(session, "faq-2", ["c"])
    with session_factory.begin() as session:
        removed = delete_document(session, doc_id="faq-1")

    assert removed == sorted(created.added_keys)
    with session_factory() as session:
        assert get_document(session, doc_id="faq-1") is None
        deleted = get_document(session, doc_id="faq-1", include_deleted=True)
        assert deleted is not None and deleted.deleted_at is not None
        assert (count_documents(session), count_chunks(session)) == (1, 1)
        assert live_chunk_keys(session).isdisjoint(created.added_keys)
        assert [d.id for d in list_documents(session)] == ["faq-2"]
        assert len(list_document_versions(session, doc_id="faq-1")) == 1


@pytest.mark.parametrize("doc_id", ["faq-1", "never-stored"])
def test_deleting_a_missing_document_raises(session_factory: Factory, doc_id: str) -> None:
    with session_factory.begin() as session:
        upsert(session, "faq-1", ["a"])
        delete_document(session, doc_id="faq-1")
    with pytest.raises(DocumentNotFound, match=doc_id), session_factory.begin() as session:
        delete_document(session, doc_id=doc_id)


def test_upserting_a_deleted_document_revives_it(session_factory: Factory) -> None:
    with session_factory.begin() as session:
        upsert(session, "faq-1", ["a", "b"])
    with session_factory.begin() as session:
        delete_document(session, doc_id="faq-1")
    with session_factory.begin() as session:
        revived = upsert(session, "faq-1", ["a", "b"])  # same content as before

    assert (revived.status, revived.version, revived.removed_keys) == ("created", 2, [])
    with session_factory() as session:
        document = get_document(session, doc_id="faq-1")
        assert document is not None and document.deleted_at is None
        assert live_chunk_keys(session) == set(revived.added_keys)
        assert [v.version for v in list_document_versions(session, doc_id="faq-1")] == [1, 2]


def test_a_failed_update_leaves_the_previous_version_intact(session_factory: Factory) -> None:
    with session_factory.begin() as session:
        first = upsert(session, "faq-1", ["a", "b"])
    duplicate_ordinals = [*make_chunks(["x"]), *make_chunks(["y"])]

    with pytest.raises(DatabaseError, match="constraint"), session_factory.begin() as session:
        upsert_document(
            session,
            doc_id="faq-1",
            source="faq-1.md",
            title="Broken",
            text="x y",
            metadata={},
            content_hash="f" * 64,
            chunks=duplicate_ordinals,
        )

    with session_factory() as session:
        document = get_document(session, doc_id="faq-1")
        assert document is not None
        assert (document.version, document.title) == (1, "Title")
        assert live_chunk_keys(session) == set(first.added_keys)
        assert len(list_document_versions(session, doc_id="faq-1")) == 1


def test_a_failed_create_leaves_nothing(session_factory: Factory) -> None:
    bad = NewChunk(ordinal=-1, section_path=(), text="negative ordinal")
    with pytest.raises(DatabaseError, match="constraint"), session_factory.begin() as session:
        upsert(session, "faq-1", ["fine"])
        upsert_document(
            session,
            doc_id="faq-2",
            source="faq-2.md",
            title="Broken",
            text="x",
            metadata={},
            content_hash="0" * 64,
            chunks=[bad],
        )

    with session_factory() as session:
        assert (count_documents(session), count_chunks(session)) == (0, 0)
        assert list_document_versions(session, doc_id="faq-2") == []


def test_list_documents_pages_by_id_with_chunk_counts(session_factory: Factory) -> None:
    with session_factory.begin() as session:
        for doc_id, n in [("c", 3), ("a", 1), ("b", 2), ("d", 0)]:
            upsert(session, doc_id, [f"{doc_id}{i}" for i in range(n)], metadata={"n": n})
        delete_document(session, doc_id="b")

    with session_factory() as session:
        page = list_documents(session, limit=2)
        assert [(d.id, d.chunk_count, d.version) for d in page] == [("a", 1, 1), ("c", 3, 1)]
        assert page[0].metadata == {"n": 1}
        assert page[0].source == "a.md"
        assert page[0].created_at.tzinfo is not None
        assert [d.id for d in list_documents(session, limit=2, offset=2)] == ["d"]
        assert list_documents(session, limit=2, offset=4) == []
        assert count_documents(session) == 3
        with pytest.raises(ValueError, match="negative"):
            list_documents(session, limit=-1)


def test_load_chunks_queries_in_batches(session_factory: Factory) -> None:
    texts = [f"passage {i}" for i in range(2100)]  # more than two batches of 1000 keys
    with session_factory.begin() as session:
        result = upsert(session, "big", texts)
        upsert(session, "small", ["other"])

    with session_factory() as session:
        wanted = [*result.added_keys[::-1], 10**9]  # reversed, duplicates-free, one unknown
        chunks = load_chunks(session, keys=wanted)
        assert [c.id for c in chunks] == sorted(result.added_keys)
        assert [c.text for c in chunks] == texts
        assert {c.document.id for c in chunks} == {"big"}
        assert load_chunks(session, keys=[]) == []


@pytest.mark.parametrize(("total", "sizes"), [(20, [7, 7, 6]), (21, [7, 7, 7]), (0, [])])
def test_iter_chunks_walks_every_chunk_in_key_order(
    session_factory: Factory, total: int, sizes: list[int]
) -> None:
    with session_factory.begin() as session:
        upsert(session, "one", [f"one {i}" for i in range(total // 2)])
        upsert(session, "two", [f"two {i}" for i in range(total - total // 2)])

    with session_factory() as session:
        batches = list(iter_chunks(session, batch_size=7))
        assert [len(batch) for batch in batches] == sizes
        keys = [chunk.id for batch in batches for chunk in batch]
        assert keys == sorted(live_chunk_keys(session))
        assert all(chunk.document.title == "Title" for batch in batches for chunk in batch)
        with pytest.raises(ValueError):
            next(iter_chunks(session, batch_size=0))


def test_get_chunk_versions(session_factory: Factory) -> None:
    with session_factory.begin() as session:
        one = upsert(session, "one", ["a"])
        upsert(session, "two", ["b"])
        two = upsert(session, "two", ["b2", "c2"])

    with session_factory() as session:
        versions = get_chunk_versions(session, keys=[*one.added_keys, *two.added_keys, -5])
    assert versions == {
        one.added_keys[0]: ChunkVersion("one", 1),
        two.added_keys[0]: ChunkVersion("two", 2),
        two.added_keys[1]: ChunkVersion("two", 2),
    }


def test_chunks_cascade_when_a_document_row_is_hard_deleted(session_factory: Factory) -> None:
    # Only chunks cascade: the version history blocks hard deletes, so remove it first.
    with session_factory.begin() as session:
        upsert(session, "doc", ["a", "b"])
    with session_factory.begin() as session:
        for version in list_document_versions(session, doc_id="doc"):
            session.delete(version)
        session.flush()
        document = get_document(session, doc_id="doc")
        session.delete(document)
    with session_factory() as session:
        assert session.scalars(select(Chunk)).all() == []


def test_hard_deleting_a_document_with_history_fails(session_factory: Factory) -> None:
    with session_factory.begin() as session:
        upsert(session, "doc", ["a"])
    with pytest.raises(sa_exc.IntegrityError), session_factory.begin() as session:
        session.delete(get_document(session, doc_id="doc"))
    with session_factory() as session:
        assert count_documents(session) == 1


def test_input_longer_than_the_columns_is_refused(session_factory: Factory) -> None:
    with session_factory() as session:
        with pytest.raises(ValueError, match="doc_id"):
            upsert(session, "x" * 256, ["a"])
        with pytest.raises(ValueError, match="empty"):
            upsert(session, "", ["a"])
        assert count_documents(session) == 0


def test_embedding_bytes_round_trip() -> None:
    vector = np.array([0.25, -1.5, 3.0], dtype=np.float64)
    data = embedding_to_bytes(vector)
    assert data == np.array([0.25, -1.5, 3.0], dtype="<f4").tobytes()
    restored = embedding_from_bytes(data)
    assert restored.dtype == np.float32
    assert restored.flags.writeable
    np.testing.assert_array_equal(restored, vector)
    with pytest.raises(ValueError, match="1-D"):
        embedding_to_bytes(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="multiple of 4"):
        embedding_from_bytes(b"\x00" * 6)
