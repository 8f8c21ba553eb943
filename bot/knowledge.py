"""The knowledge service: documents in, passages out.

It ties the SQL store (source of truth: documents, versions, chunks with their
embeddings) to the index (a derived structure that can always be rebuilt from SQL)
and the embedder. Order of a write: parse -> chunk -> embed -> one SQL transaction
-> index update. If the index update fails after the commit, nothing is lost: the
next `reconcile()` (run at every start-up) repairs the index from SQL without
re-embedding.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from db import audit
from db import repository as repo
from db.audit import Actor
from db.errors import DocumentNotFound
from db.types import NewChunk
from retrieval.chunking import build_context, chunk_document
from retrieval.errors import DocumentNotFoundError, RetrievalError
from retrieval.parsing import (
    derive_doc_id,
    has_control_characters,
    parse_bytes,
    printable_document,
)
from retrieval.types import (
    Embedder,
    IndexBackend,
    IndexedChunk,
    ParsedDocument,
    SearchHit,
    SearchRequest,
)

log = logging.getLogger(__name__)

Status = Literal["created", "updated", "unchanged", "failed"]


@dataclass(frozen=True, slots=True)
class IngestOutcome:
    """What happened to one input document."""

    source: str
    status: Status
    doc_id: str | None = None
    version: int | None = None
    chunks: int = 0
    error: str | None = None
    error_type: str | None = None


def audit_ingest(
    sessions: sessionmaker[Session], actor: Actor, outcomes: Iterable[IngestOutcome]
) -> None:
    """Record a `documents.ingest` audit event for the documents an ingestion created or
    changed (id, status, version, source), once it has committed; nothing when it changed
    none."""
    changed = [
        {"id": o.doc_id, "status": o.status, "version": o.version, "source": o.source}
        for o in outcomes
        if o.status in ("created", "updated")
    ]
    if changed:
        audit.record_committed(sessions, actor, "documents.ingest", details={"documents": changed})


@dataclass(frozen=True, slots=True)
class SearchResult:
    hits: list[SearchHit]
    timings_ms: dict[str, float] = field(default_factory=dict)
    reranker_version: str | None = None  # the feedback reranker that ordered the hits


@dataclass(frozen=True, slots=True)
class ReconcileReport:
    added: int
    removed: int
    total: int


def content_hash(doc: ParsedDocument) -> str:
    """SHA-256 over what defines a document's content: title, sections and metadata."""
    payload = json.dumps(
        {
            "title": doc.title,
            "sections": [[list(s.path), s.text] for s in doc.sections],
            "metadata": doc.metadata,
        },
        sort_keys=True,
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


@dataclass(slots=True)
class _Prepared:
    doc: ParsedDocument
    doc_id: str
    digest: str
    chunks: list[NewChunk]


class KnowledgeService:
    """Ingest, delete and search documents; keep SQL and the index consistent."""

    def __init__(
        self,
        *,
        session_factory: sessionmaker[Session],
        index: IndexBackend,
        embedder: Embedder,
        chunk_size: int = 900,
        chunk_overlap: int = 150,
        max_upload_bytes: int = 20 * 1024 * 1024,
    ):
        self._sessions = session_factory
        self.index = index
        self.embedder = embedder
        self.chunk_size = chunk_size
        self.chunk_overlap = chunk_overlap
        self.max_upload_bytes = max_upload_bytes
        # Serialises writers so "unchanged" checks and index updates do not interleave.
        self._write_lock = threading.Lock()

    @property
    def sessions(self) -> sessionmaker[Session]:
        return self._sessions

    @property
    def write_lock(self) -> threading.Lock:
        """Held by every writer; hold it to change chunks without racing ingestion."""
        return self._write_lock

    # -- ingestion --------------------------------------------------------------------

    def ingest_files(self, files: Iterable[tuple[str, bytes, str | None]]) -> list[IngestOutcome]:
        """Parse and ingest uploaded files; a bad file is reported, the others proceed."""
        outcomes: list[IngestOutcome] = []
        parsed: list[ParsedDocument] = []
        for name, data, content_type in files:
            try:
                parsed.extend(
                    parse_bytes(
                        name, data, content_type=content_type, max_bytes=self.max_upload_bytes
                    )
                )
            except RetrievalError as exc:
                outcomes.append(_failed(name, exc))
        outcomes.extend(self.ingest_documents(parsed))
        return outcomes

    def ingest_documents(
        self, docs: Sequence[ParsedDocument], *, batch_size: int = 256
    ) -> list[IngestOutcome]:
        """Ingest parsed documents in batches (one SQL transaction and index update each)."""
        outcomes: list[IngestOutcome] = []
        for start in range(0, len(docs), batch_size):
            outcomes.extend(self._ingest_batch(docs[start : start + batch_size]))
        return outcomes

    def _ingest_batch(self, docs: Sequence[ParsedDocument]) -> list[IngestOutcome]:
        outcomes: list[IngestOutcome] = []
        prepared: list[_Prepared] = []
        seen: dict[str, int] = {}
        for raw in docs:
            doc = printable_document(raw)
            doc_id = doc.doc_id or derive_doc_id(doc.source or doc.title)
            if has_control_characters(doc_id):
                outcomes.append(
                    IngestOutcome(
                        source=doc.source,
                        status="failed",
                        doc_id=None,
                        error=f"document id {doc_id!r} contains control characters; "
                        "use letters, digits and punctuation",
                        error_type="InvalidDocumentId",
                    )
                )
                continue
            if doc_id in seen:
                outcomes.append(
                    IngestOutcome(
                        source=doc.source,
                        status="failed",
                        doc_id=doc_id,
                        error=f"document id {doc_id!r} appears twice in this batch",
                        error_type="DuplicateDocumentId",
                    )
                )
                continue
            seen[doc_id] = 1
            prepared.append(_Prepared(doc=doc, doc_id=doc_id, digest=content_hash(doc), chunks=[]))

        with self._write_lock:
            with self._sessions() as session:
                current = repo.current_hashes(session, doc_ids=[p.doc_id for p in prepared])
            todo = [p for p in prepared if current.get(p.doc_id) != p.digest]
            for p in prepared:
                if current.get(p.doc_id) == p.digest:
                    outcomes.append(
                        IngestOutcome(source=p.doc.source, status="unchanged", doc_id=p.doc_id)
                    )
            self._chunk_and_embed(todo, outcomes)
            todo = [p for p in todo if p.chunks]
            if not todo:
                return outcomes

            added: list[int] = []
            removed: list[int] = []
            with self._sessions.begin() as session:
                for p in todo:
                    result = repo.upsert_document(
                        session,
                        doc_id=p.doc_id,
                        source=p.doc.source,
                        title=p.doc.title,
                        text=p.doc.text,
                        metadata=dict(p.doc.metadata),
                        content_hash=p.digest,
                        chunks=p.chunks,
                    )
                    added.extend(result.added_keys)
                    removed.extend(result.removed_keys)
                    outcomes.append(
                        IngestOutcome(
                            source=p.doc.source,
                            status=result.status,
                            doc_id=p.doc_id,
                            version=result.version,
                            chunks=len(result.added_keys),
                        )
                    )
            self._apply_to_index(added, removed)
        return outcomes

    def _chunk_and_embed(self, todo: list[_Prepared], outcomes: list[IngestOutcome]) -> None:
        texts: list[str] = []
        owners: list[tuple[_Prepared, NewChunk]] = []
        for p in todo:
            drafts = chunk_document(p.doc, chunk_size=self.chunk_size, overlap=self.chunk_overlap)
            if not drafts:
                outcomes.append(
                    IngestOutcome(
                        source=p.doc.source,
                        status="failed",
                        doc_id=p.doc_id,
                        error="the document has no text to index",
                        error_type="EmptyDocumentError",
                    )
                )
                continue
            for draft in drafts:
                context = build_context(p.doc.title, draft.section_path, p.doc.metadata)
                chunk = NewChunk(
                    ordinal=draft.ordinal,
                    section_path=tuple(draft.section_path),
                    text=draft.text,
                    context=context,
                    metadata=dict(p.doc.metadata),
                    embedding=None,
                    embedding_model=self.embedder.name,
                )
                owners.append((p, chunk))
                texts.append(f"{context}\n{draft.text}" if context else draft.text)
        if not texts:
            return
        vectors = self.embedder.embed_documents(texts)
        for (p, chunk), vector in zip(owners, vectors, strict=True):
            p.chunks.append(
                NewChunk(
                    ordinal=chunk.ordinal,
                    section_path=chunk.section_path,
                    text=chunk.text,
                    context=chunk.context,
                    metadata=chunk.metadata,
                    embedding=repo.embedding_to_bytes(vector),
                    embedding_model=chunk.embedding_model,
                )
            )

    def _apply_to_index(self, added: Sequence[int], removed: Sequence[int]) -> None:
        try:
            if added:
                with self._sessions() as session:
                    chunks = [_indexed(row) for row in repo.load_chunks(session, keys=added)]
                self.index.upsert(chunks)
            if removed:
                self.index.delete(list(removed))
            self.index.flush()
        except RetrievalError:
            log.exception(
                "index update failed after the database commit; run `teller reindex` or "
                "restart to reconcile (%d added, %d removed chunks pending)",
                len(added),
                len(removed),
            )
            raise

    def delete_document(self, doc_id: str) -> int:
        """Delete a document and its chunks; returns how many chunks were removed."""
        with self._write_lock:
            try:
                with self._sessions.begin() as session:
                    removed = repo.delete_document(session, doc_id=doc_id)
            except DocumentNotFound as exc:
                raise DocumentNotFoundError(f"no document with id {doc_id!r}") from exc
            self._apply_to_index([], removed)
            return len(removed)

    # -- search -----------------------------------------------------------------------

    def search(self, request: SearchRequest) -> SearchResult:
        """Embed the query (unless BM25-only) and search the index."""
        t0 = time.perf_counter()
        vector = self.embedder.embed_query(request.query) if request.mode != "bm25" else None
        t1 = time.perf_counter()
        hits = self.index.search(request, vector)
        t2 = time.perf_counter()
        return SearchResult(
            hits=hits,
            timings_ms={
                "embed": (t1 - t0) * 1e3,
                "search": (t2 - t1) * 1e3,
                "total": (t2 - t0) * 1e3,
            },
            reranker_version=None
            if vector is None
            else getattr(self.index, "reranker_version", None),
        )

    # -- consistency ------------------------------------------------------------------

    def reconcile(self) -> ReconcileReport:
        """Make the index hold exactly the live chunks of SQL (no re-embedding)."""
        with self._write_lock:
            with self._sessions() as session:
                wanted = repo.live_chunk_keys(session)
            present = self.index.keys()
            extra = sorted(present - wanted)
            missing = sorted(wanted - present)
            if extra:
                self.index.delete(extra)
            for start in range(0, len(missing), 2000):
                batch = missing[start : start + 2000]
                with self._sessions() as session:
                    self.index.upsert(
                        [_indexed(row) for row in repo.load_chunks(session, keys=batch)]
                    )
            self.index.flush()
            if extra or missing:
                log.info("reconciled index: %d added, %d removed", len(missing), len(extra))
            return ReconcileReport(added=len(missing), removed=len(extra), total=len(wanted))

    def rebuild(self, *, batch_size: int = 1000) -> ReconcileReport:
        """Load the index again from SQL, without re-embedding.

        A backend with `reindex(chunks)` (Elasticsearch) gets every SQL chunk streamed
        into a new index version that replaces the old one atomically, so searches
        never see a partial index; a reconcile then catches writes that other
        processes sent to the old version meanwhile. Other backends are emptied and
        loaded again by `reconcile`.
        """
        reindex = getattr(self.index, "reindex", None)
        if not callable(reindex):
            with self._write_lock:
                present = sorted(self.index.keys())
                if present:
                    self.index.delete(present)
            return self.reconcile()
        written = 0

        def chunks(session: Session) -> Iterator[IndexedChunk]:
            nonlocal written
            for batch in repo.iter_chunks(session, batch_size=batch_size):
                for row in batch:
                    written += 1
                    yield indexed_chunk_from_row(row)

        with self._write_lock, self._sessions() as session:
            reindex(chunks(session))
        report = self.reconcile()
        return ReconcileReport(
            added=written + report.added, removed=report.removed, total=report.total
        )


def indexed_chunk_from_row(row: Any) -> IndexedChunk:
    """The index's view of a stored chunk (a `db.models.Chunk` loaded with its
    document header, as `repository.load_chunks` and `iter_chunks` return it)."""
    embedding = repo.embedding_from_bytes(row.embedding) if row.embedding is not None else None
    document = row.document
    return IndexedChunk(
        key=int(row.id),
        doc_id=row.document_id,
        version=int(row.version),
        ordinal=int(row.ordinal),
        title=document.title if document is not None else "",
        section_path=tuple(row.section_path or ()),
        text=row.text,
        context=row.context or "",
        metadata=dict(row.meta or {}),
        embedding=np.asarray(embedding, dtype=np.float32) if embedding is not None else None,
    )


_indexed = indexed_chunk_from_row


def _failed(source: str, exc: Exception) -> IngestOutcome:
    return IngestOutcome(
        source=source, status="failed", error=str(exc), error_type=type(exc).__name__
    )
