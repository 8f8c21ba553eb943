"""Value types passed into and returned by the repository functions."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

UpsertStatus = Literal["created", "updated", "unchanged"]


@dataclass(frozen=True, slots=True)
class NewChunk:
    """A chunk to store with a document version.

    `ordinal` is its position in the document (unique per version, >= 0); `context` is
    the header (title, section path, short metadata) indexed and embedded with the text;
    `embedding` holds float32 little-endian bytes (see `embedding_to_bytes`).
    """

    ordinal: int
    section_path: tuple[str, ...]
    text: str
    context: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict)
    embedding: bytes | None = None
    embedding_model: str | None = None


@dataclass(frozen=True, slots=True)
class UpsertResult:
    """What `upsert_document` did.

    `added_keys` are the primary keys of the chunks written now, in the order they were
    given; `removed_keys` those of the previous version's chunks, now deleted. Both are
    empty when the status is "unchanged". An index applies them to stay in sync.
    """

    status: UpsertStatus
    doc_id: str
    version: int
    added_keys: list[int]
    removed_keys: list[int]


@dataclass(frozen=True, slots=True)
class DocumentSummary:
    """A live document without its text, as listed by `list_documents`."""

    id: str
    title: str
    source: str
    version: int
    content_hash: str
    chunk_count: int
    created_at: dt.datetime
    updated_at: dt.datetime
    metadata: Mapping[str, Any]


class ChunkVersion(NamedTuple):
    """The document id and version a chunk key belongs to (what an answer cites)."""

    doc_id: str
    version: int
