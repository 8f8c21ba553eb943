"""Protocols and value types shared by every retrieval backend.

The embedded index and the Elasticsearch backend both implement `Retriever` and
`IndexBackend` and return the same `SearchHit` type, so everything above this seam
(API, answer pipeline, benchmarks) is backend-agnostic.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

Vector = npt.NDArray[np.float32]
Matrix = npt.NDArray[np.float32]

FusionMethod = Literal["convex", "rrf"]
RetrievalMode = Literal["hybrid", "bm25", "dense"]


@dataclass(frozen=True, slots=True)
class Section:
    """A run of text under one heading path, as found by a parser."""

    path: tuple[str, ...]
    text: str


@dataclass(frozen=True, slots=True)
class ParsedDocument:
    """What a parser extracts from one input record, before chunking.

    `doc_id` is set when the source carries a stable id (a BEIR `_id`, an `id` column);
    otherwise the ingestion layer derives one from the source name.
    """

    title: str
    sections: tuple[Section, ...]
    metadata: Mapping[str, Any] = field(default_factory=dict)
    doc_id: str | None = None
    source: str = ""

    @property
    def text(self) -> str:
        return "\n\n".join(s.text for s in self.sections if s.text)


@dataclass(frozen=True, slots=True)
class ChunkDraft:
    """A chunk produced by the chunker, not yet stored or embedded."""

    ordinal: int
    section_path: tuple[str, ...]
    text: str


@dataclass(frozen=True, slots=True)
class IndexedChunk:
    """A chunk as the index stores it.

    `key` is the chunk's integer primary key in SQL; indexes use it as their own id so
    the database and the index can be reconciled. `context` is the header (title,
    section path, short metadata values) that is indexed and embedded with the text.
    """

    key: int
    doc_id: str
    version: int
    ordinal: int
    title: str
    section_path: tuple[str, ...]
    text: str
    context: str
    metadata: Mapping[str, Any]
    embedding: Vector | None = None

    @property
    def indexed_text(self) -> str:
        return f"{self.context}\n{self.text}" if self.context else self.text


@dataclass(frozen=True, slots=True)
class SearchFilters:
    """Metadata filters applied identically to BM25 and dense retrieval.

    `valid_on` keeps chunks whose `effective_from` is on or before the date and whose
    `effective_until` is on or after it (missing bounds are open).
    """

    product: str | None = None
    document_type: str | None = None
    valid_on: dt.date | None = None

    def is_empty(self) -> bool:
        return self.product is None and self.document_type is None and self.valid_on is None


@dataclass(frozen=True, slots=True)
class SearchHit:
    """One passage returned by a retriever, with the score from each retriever."""

    key: int
    doc_id: str
    version: int
    title: str
    section_path: tuple[str, ...]
    text: str
    metadata: Mapping[str, Any]
    score: float
    bm25_score: float | None = None
    dense_score: float | None = None
    rank: int = 0


@dataclass(frozen=True, slots=True)
class SearchRequest:
    query: str
    k: int = 10
    filters: SearchFilters = field(default_factory=SearchFilters)
    mode: RetrievalMode = "hybrid"


@runtime_checkable
class Embedder(Protocol):
    """Turns text into L2-normalised float32 vectors."""

    @property
    def name(self) -> str: ...

    @property
    def dimension(self) -> int: ...

    def embed_documents(self, texts: Sequence[str]) -> Matrix: ...

    def embed_query(self, text: str) -> Vector: ...


@runtime_checkable
class Retriever(Protocol):
    """Finds passages for a query. Implemented by every index backend."""

    def search(self, request: SearchRequest, query_vector: Vector | None = None) -> list[SearchHit]:
        """Return at most `request.k` hits, best first.

        `query_vector` is the embedded query; callers pass it so one embedding serves
        both the dense leg and any later reranking. Required for `hybrid` and `dense`.
        """
        ...


@runtime_checkable
class IndexBackend(Retriever, Protocol):
    """A retriever whose contents can be changed incrementally."""

    def upsert(self, chunks: Sequence[IndexedChunk]) -> None:
        """Add or replace chunks (matched by `key`); visible to the next search."""
        ...

    def delete(self, keys: Sequence[int]) -> None:
        """Remove chunks by key; unknown keys are ignored."""
        ...

    def keys(self) -> set[int]:
        """Every chunk key currently in the index (used to reconcile with SQL)."""
        ...

    def count(self) -> int: ...

    def document_frequencies(self, terms: Sequence[str]) -> tuple[int, dict[str, int]]:
        """The number of indexed chunks and, for each of `terms`, how many contain it.

        `terms` are tokens as the BM25 analyzer makes them (lower-case, stemmed:
        "mortgag"), so they are counted exactly as keyword search matches them.
        """
        ...

    def flush(self) -> None:
        """Persist whatever is only in memory. Cheap when nothing changed."""
        ...

    def close(self) -> None: ...
