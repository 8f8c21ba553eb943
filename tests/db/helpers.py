"""Builders for repository test data."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from db.repository import embedding_to_bytes, upsert_document
from db.types import NewChunk, UpsertResult


def make_chunks(texts: list[str], *, model: str | None = "test-model") -> list[NewChunk]:
    """One chunk per text, with a deterministic 4-dimensional embedding."""
    return [
        NewChunk(
            ordinal=ordinal,
            section_path=("Accounts", f"Section {ordinal}"),
            text=text,
            context=f"Doc | Section {ordinal}",
            metadata={"page": ordinal + 1},
            embedding=embedding_to_bytes(np.full(4, ordinal + 0.5, dtype=np.float32)),
            embedding_model=model,
        )
        for ordinal, text in enumerate(texts)
    ]


def upsert(
    session: Session,
    doc_id: str,
    texts: list[str],
    *,
    title: str = "Title",
    metadata: dict[str, Any] | None = None,
) -> UpsertResult:
    """Upsert a document whose text is the chunk texts and whose hash derives from them."""
    text = "\n\n".join(texts)
    return upsert_document(
        session,
        doc_id=doc_id,
        source=f"{doc_id}.md",
        title=title,
        text=text,
        metadata=metadata or {"product": "savings"},
        content_hash=hashlib.sha256(f"{title}\0{text}".encode()).hexdigest(),
        chunks=make_chunks(texts),
    )
