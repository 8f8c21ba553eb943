"""Repository functions for documents and chunks.

Every function takes a `Session` and keyword-only arguments, and never commits: the
caller owns the transaction (`with session_factory.begin() as session: ...`), so an
upsert and the index update it triggers can succeed or fail together. Functions that
write flush, so constraint errors surface here, converted to `db.errors` types.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import delete, func, select
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session, selectinload

from db.base import utcnow
from db.errors import ConflictError, DocumentNotFound, translating
from db.models import Chunk, Document, DocumentVersion
from db.types import ChunkVersion, DocumentSummary, NewChunk, UpsertResult

# Keys per `IN (...)` query: well under SQLite's and PostgreSQL's parameter limits.
KEY_BATCH_SIZE = 1000


def embedding_to_bytes(vector: npt.ArrayLike) -> bytes:
    """Serialise a 1-D vector as float32 little-endian bytes (4 bytes per dimension)."""
    array = np.asarray(vector, dtype="<f4")
    if array.ndim != 1:
        raise ValueError(f"an embedding must be a 1-D vector, got shape {array.shape}")
    return array.tobytes()


def embedding_from_bytes(data: bytes) -> npt.NDArray[np.float32]:
    """Inverse of `embedding_to_bytes`: a new, writable float32 vector."""
    if len(data) % 4:
        raise ValueError(f"embedding bytes must be a multiple of 4 long, got {len(data)}")
    return np.frombuffer(data, dtype="<f4").astype(np.float32)


def _check_length(name: str, value: str | None, limit: int) -> None:
    # SQLite does not enforce VARCHAR lengths; check here so both databases agree.
    if value is not None and len(value) > limit:
        raise ValueError(f"{name} is {len(value)} characters long; the limit is {limit}")


def _lock_document(session: Session, doc_id: str) -> Document | None:
    # FOR UPDATE serialises concurrent writers of one document on PostgreSQL (SQLite
    # locks the whole file). populate_existing: after waiting for the lock, use the row
    # the other transaction committed, not a stale copy from the identity map.
    statement = (
        select(Document)
        .where(Document.id == doc_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return session.scalars(statement).one_or_none()


def _insert_document(session: Session, document: Document) -> bool:
    """Insert a new document row; False when a concurrent transaction inserted it first."""
    try:
        # A savepoint, so a duplicate key does not abort the caller's transaction.
        with session.begin_nested():
            session.add(document)
    except sa_exc.IntegrityError:
        if session.scalar(select(Document.id).where(Document.id == document.id)) is None:
            raise  # another constraint failed; translating() reports it
        return False
    return True


def _delete_chunks(session: Session, doc_id: str) -> list[int]:
    statement = delete(Chunk).where(Chunk.document_id == doc_id).returning(Chunk.id)
    return sorted(session.scalars(statement).all())


def _record_version(session: Session, document: Document) -> None:
    session.add(
        DocumentVersion(
            document_id=document.id,
            version=document.version,
            source=document.source,
            title=document.title,
            text=document.text,
            meta=dict(document.meta),
            content_hash=document.content_hash,
            created_at=document.updated_at,
        )
    )


def _add_chunks(session: Session, document: Document, chunks: Sequence[NewChunk]) -> list[int]:
    rows = [
        Chunk(
            document_id=document.id,
            version=document.version,
            ordinal=chunk.ordinal,
            section_path=list(chunk.section_path),
            text=chunk.text,
            context=chunk.context,
            meta=dict(chunk.metadata),
            embedding=chunk.embedding,
            embedding_model=chunk.embedding_model,
            created_at=document.updated_at,
        )
        for chunk in chunks
    ]
    session.add_all(rows)
    session.flush()
    return [row.id for row in rows]


def upsert_document(
    session: Session,
    *,
    doc_id: str,
    source: str,
    title: str,
    text: str,
    metadata: Mapping[str, Any],
    content_hash: str,
    chunks: Sequence[NewChunk],
) -> UpsertResult:
    """Store a document and its chunks as a new version, unless its content is unchanged.

    - live document with the same `content_hash`: "unchanged", nothing is written;
    - live document with another hash: "updated", version + 1, the old version's chunks
      are deleted (their keys are `removed_keys`) and `chunks` inserted (`added_keys`);
    - soft-deleted document: "created" again, continuing its version numbers;
    - unknown id: "created" at version 1.

    Every stored version is also recorded in `document_versions`. Concurrent upserts of
    one id are serialised on PostgreSQL (row lock; a concurrent first insert is
    detected and handled as an update). On SQLite a writer that lost the race gets
    `ConflictError`: roll back and retry. Constraint violations (for example two chunks
    with the same ordinal) raise `DatabaseError`; roll the transaction back.
    """
    _check_length("doc_id", doc_id, 255)
    if not doc_id:
        raise ValueError("doc_id must not be empty")
    _check_length("source", source, 1024)
    _check_length("content_hash", content_hash, 64)
    for chunk in chunks:
        _check_length("embedding_model", chunk.embedding_model, 512)

    with translating(f"storing document {doc_id!r}"):
        now = utcnow()
        document = _lock_document(session, doc_id)
        if document is None:
            document = Document(
                id=doc_id,
                source=source,
                title=title,
                text=text,
                meta=dict(metadata),
                content_hash=content_hash,
                version=1,
                created_at=now,
                updated_at=now,
                deleted_at=None,
            )
            if _insert_document(session, document):
                _record_version(session, document)
                added = _add_chunks(session, document, chunks)
                return UpsertResult("created", doc_id, 1, added, [])
            # A concurrent upsert created it and committed: continue as an update.
            document = _lock_document(session, doc_id)
            if document is None:
                raise ConflictError(f"document {doc_id!r} changed concurrently; retry")

        revived = document.deleted_at is not None
        if not revived and document.content_hash == content_hash:
            return UpsertResult("unchanged", doc_id, document.version, [], [])

        removed = _delete_chunks(session, doc_id)
        document.version += 1
        document.source = source
        document.title = title
        document.text = text
        document.meta = dict(metadata)
        document.content_hash = content_hash
        document.updated_at = now
        document.deleted_at = None
        _record_version(session, document)
        added = _add_chunks(session, document, chunks)
        return UpsertResult(
            "created" if revived else "updated", doc_id, document.version, added, removed
        )


def delete_document(session: Session, *, doc_id: str) -> list[int]:
    """Soft-delete a live document and delete its chunks; returns the removed chunk keys.

    The row and its version history stay (audit). Raises `DocumentNotFound` when no live
    document has this id.
    """
    with translating(f"deleting document {doc_id!r}"):
        document = _lock_document(session, doc_id)
        if document is None or document.deleted_at is not None:
            raise DocumentNotFound(f"no live document has the id {doc_id!r}")
        removed = _delete_chunks(session, doc_id)
        now = utcnow()
        document.deleted_at = now
        document.updated_at = now
        session.flush()
        return removed


def get_document(
    session: Session, *, doc_id: str, include_deleted: bool = False
) -> Document | None:
    """The document with this id; None when unknown, or deleted unless `include_deleted`."""
    statement = select(Document).where(Document.id == doc_id)
    if not include_deleted:
        statement = statement.where(Document.deleted_at.is_(None))
    with translating(f"reading document {doc_id!r}"):
        return session.scalars(statement).one_or_none()


def get_document_version(session: Session, *, doc_id: str, version: int) -> DocumentVersion | None:
    """One stored version of a document (also of a deleted one), or None."""
    statement = select(DocumentVersion).where(
        DocumentVersion.document_id == doc_id, DocumentVersion.version == version
    )
    with translating(f"reading version {version} of document {doc_id!r}"):
        return session.scalars(statement).one_or_none()


def list_document_versions(session: Session, *, doc_id: str) -> list[DocumentVersion]:
    """Every stored version of a document, oldest first; empty for an unknown id."""
    statement = (
        select(DocumentVersion)
        .where(DocumentVersion.document_id == doc_id)
        .order_by(DocumentVersion.version)
    )
    with translating(f"reading the versions of document {doc_id!r}"):
        return list(session.scalars(statement))


def _summary_select() -> Any:
    chunk_count = (
        select(func.count(Chunk.id))
        .where(Chunk.document_id == Document.id)
        .correlate(Document)
        .scalar_subquery()
    )
    return select(
        Document.id,
        Document.title,
        Document.source,
        Document.version,
        Document.content_hash,
        chunk_count,
        Document.created_at,
        Document.updated_at,
        Document.meta,
    ).where(Document.deleted_at.is_(None))


def _summary(row: Any) -> DocumentSummary:
    return DocumentSummary(
        id=row[0],
        title=row[1],
        source=row[2],
        version=row[3],
        content_hash=row[4],
        chunk_count=row[5],
        created_at=row[6],
        updated_at=row[7],
        metadata=row[8],
    )


def list_documents(session: Session, *, limit: int = 100, offset: int = 0) -> list[DocumentSummary]:
    """Live documents ordered by id, without their text, with their chunk counts."""
    if limit < 0 or offset < 0:
        raise ValueError("limit and offset must not be negative")
    statement = _summary_select().order_by(Document.id).limit(limit).offset(offset)
    with translating("listing documents"):
        rows = session.execute(statement).all()
    return [_summary(row) for row in rows]


def get_document_summary(session: Session, *, doc_id: str) -> DocumentSummary | None:
    """One live document's summary (no text), or None."""
    with translating(f"reading document {doc_id!r}"):
        row = session.execute(_summary_select().where(Document.id == doc_id)).one_or_none()
    return None if row is None else _summary(row)


def current_hashes(session: Session, *, doc_ids: Collection[str]) -> dict[str, str]:
    """`{doc_id: content_hash}` of the live documents among `doc_ids` (to skip re-embedding)."""
    hashes: dict[str, str] = {}
    ids = list(dict.fromkeys(doc_ids))
    with translating("reading content hashes"):
        for start in range(0, len(ids), KEY_BATCH_SIZE):
            statement = select(Document.id, Document.content_hash).where(
                Document.id.in_(ids[start : start + KEY_BATCH_SIZE]),
                Document.deleted_at.is_(None),
            )
            hashes.update({row[0]: row[1] for row in session.execute(statement)})
    return hashes


def count_documents(session: Session) -> int:
    """The number of live documents."""
    statement = select(func.count()).select_from(Document).where(Document.deleted_at.is_(None))
    with translating("counting documents"):
        return session.scalar(statement) or 0


def count_chunks(session: Session) -> int:
    """The number of stored chunks (only live documents have chunks)."""
    with translating("counting chunks"):
        return session.scalar(select(func.count()).select_from(Chunk)) or 0


def live_chunk_keys(session: Session) -> set[int]:
    """The keys of every stored chunk, to reconcile an index with the database."""
    with translating("reading chunk keys"):
        return set(session.scalars(select(Chunk.id)))


def _batches(keys: Collection[int]) -> Iterator[list[int]]:
    ordered = sorted(set(keys))
    for start in range(0, len(ordered), KEY_BATCH_SIZE):
        yield ordered[start : start + KEY_BATCH_SIZE]


def _with_document_header() -> Any:
    # Chunk.document refuses lazy loads: load the documents' headers (not their full
    # text) in one query per batch instead of one per chunk.
    return selectinload(Chunk.document).load_only(
        Document.id, Document.title, Document.source, Document.version, Document.meta
    )


def load_chunks(session: Session, *, keys: Collection[int]) -> list[Chunk]:
    """The chunks with these keys, ordered by key; unknown keys are skipped.

    `chunk.document` is loaded (id, title, source, version, metadata).
    """
    chunks: list[Chunk] = []
    with translating("loading chunks"):
        for batch in _batches(keys):
            statement = (
                select(Chunk)
                .where(Chunk.id.in_(batch))
                .order_by(Chunk.id)
                .options(_with_document_header())
            )
            chunks.extend(session.scalars(statement))
    return chunks


def iter_chunks(session: Session, *, batch_size: int = 1000) -> Iterator[list[Chunk]]:
    """Every stored chunk in batches, ordered by key (for index rebuilds).

    Pages by key, so each batch is one indexed range query however far the scan is;
    `chunk.document` is loaded as in `load_chunks`.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    last_key: int | None = None
    while True:
        statement = select(Chunk).order_by(Chunk.id).limit(batch_size)
        if last_key is not None:
            statement = statement.where(Chunk.id > last_key)
        with translating("reading chunks"):
            batch = list(session.scalars(statement.options(_with_document_header())))
        if not batch:
            return
        yield batch
        if len(batch) < batch_size:
            return
        last_key = batch[-1].id


def get_chunk_versions(session: Session, *, keys: Collection[int]) -> dict[int, ChunkVersion]:
    """The (document id, version) of each stored chunk key; unknown keys are absent."""
    versions: dict[int, ChunkVersion] = {}
    with translating("reading chunk versions"):
        for batch in _batches(keys):
            statement = select(Chunk.id, Chunk.document_id, Chunk.version).where(
                Chunk.id.in_(batch)
            )
            for key, doc_id, version in session.execute(statement):
                versions[key] = ChunkVersion(doc_id, version)
    return versions
