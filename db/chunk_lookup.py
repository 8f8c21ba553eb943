"""Stored chunks looked up for the feedback loop and model switches: their embeddings
and texts by key, and the chunks stored under another embedding model.

Keyword-only functions that take a `Session` and never commit, like `db.repository`.
Keys are read in batches of 1000 per `IN (...)` query.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.errors import translating
from db.models import Chunk, Document


def chunk_embeddings(session: Session, *, keys: Collection[int]) -> dict[int, tuple[bytes, str]]:
    """`{chunk key: (embedding bytes, model)}` of the stored chunks among `keys`."""
    result: dict[int, tuple[bytes, str]] = {}
    ordered = sorted(set(keys))
    with translating("reading chunk embeddings"):
        for start in range(0, len(ordered), 1000):
            statement = select(Chunk.id, Chunk.embedding, Chunk.embedding_model).where(
                Chunk.id.in_(ordered[start : start + 1000]), Chunk.embedding.is_not(None)
            )
            for key, data, model in session.execute(statement):
                if data is not None:
                    result[int(key)] = (data, model or "")
    return result


class StoredPassage(NamedTuple):
    """A stored chunk's text, document, version and metadata."""

    text: str
    doc_id: str
    version: int
    metadata: dict[str, Any]


def chunk_texts(session: Session, *, keys: Collection[int]) -> dict[int, StoredPassage]:
    """`{chunk key: StoredPassage}` of the stored chunks among `keys`; the metadata is
    the document's, overridden by the chunk's own."""
    result: dict[int, StoredPassage] = {}
    ordered = sorted(set(keys))
    with translating("reading chunk texts"):
        for start in range(0, len(ordered), 1000):
            statement = (
                select(
                    Chunk.id,
                    Chunk.text,
                    Chunk.document_id,
                    Chunk.version,
                    Document.meta,
                    Chunk.meta,
                )
                .join(Document, Document.id == Chunk.document_id)
                .where(Chunk.id.in_(ordered[start : start + 1000]))
            )
            for key, text, doc_id, version, doc_meta, meta in session.execute(statement):
                merged = {**(doc_meta or {}), **(meta or {})}
                result[int(key)] = StoredPassage(text, doc_id, int(version), merged)
    return result


def stale_chunk_keys(session: Session, *, model: str, limit: int | None = None) -> list[int]:
    """Keys of the chunks stored under another embedding model than `model`, in key order
    (the first `limit` when given)."""
    statement = (
        select(Chunk.id).where(Chunk.embedding_model.is_distinct_from(model)).order_by(Chunk.id)
    )
    with translating("finding chunks to re-embed"):
        return list(session.scalars(statement if limit is None else statement.limit(limit)))
