"""The embedded index: BM25 (tantivy) + dense vectors (usearch) in the data dir.

Why these libraries: tantivy is a Lucene-class search library (BM25, Snowball
stemming, boolean and range queries, transactional commits, incremental deletes)
with maintained Python bindings; usearch is a maintained HNSW vector index with
incremental add/remove, exact search for small collections and a single-file
snapshot. Neither needs a server.

Durability: tantivy commits every write. The vector snapshot is written by `flush()`
(the knowledge service calls it after each ingest batch and on shutdown). SQL keeps
every chunk's embedding, so after a crash the service reconciles the index with the
database (`keys()` reports only chunks present in both structures) without
re-embedding anything.

One process owns an index directory at a time (an exclusive `flock`); a second one
gets `IndexUnavailableError` telling it to go through the running server's API.

Reads and search (the BM25 and dense legs, their filters and fusion) are in
`embedded_search`, what the index stores per chunk in `embedded_store`.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import IO

import numpy as np
import tantivy
from usearch.index import Index as VectorIndex

from retrieval.analysis import ANALYZER_NAME, build_analyzer
from retrieval.embedded_search import EmbeddedSearch
from retrieval.embedded_store import Record, build_schema, load_records, payload, record_for
from retrieval.errors import IncompatibleIndexError, IndexInUseError, IndexUnavailableError
from retrieval.types import FusionMethod, IndexedChunk

log = logging.getLogger(__name__)

_META_FILE = "index.json"
_VECTORS_FILE = "vectors.usearch"
FORMAT_VERSION = 1


class EmbeddedIndex(EmbeddedSearch):
    """`IndexBackend` over tantivy + usearch files in one directory."""

    def __init__(
        self,
        path: str | Path,
        *,
        dimension: int,
        fusion: FusionMethod = "convex",
        dense_weight: float = 0.7,
        rrf_k: int = 60,
        candidates: int = 100,
        exact_threshold: int = 20_000,
    ):
        if dimension < 1:
            raise ValueError("dimension must be positive")
        if not 0.0 <= dense_weight <= 1.0:
            raise ValueError("dense_weight must be within [0, 1]")
        if candidates < 1:
            raise ValueError("candidates must be at least 1")
        self.path = Path(path)
        self.dimension = dimension
        self.fusion: FusionMethod = fusion
        self.dense_weight = dense_weight
        self.rrf_k = rrf_k
        self.candidates = candidates
        self.exact_threshold = exact_threshold
        self._lock = threading.RLock()
        self._lock_file: IO[str] | None = None
        self._records: dict[int, Record] = {}
        self._vectors_dirty = False
        self._index: tantivy.Index | None = None
        self._writer: tantivy.IndexWriter | None = None
        self._searcher: tantivy.Searcher | None = None
        self._vectors: VectorIndex | None = None
        self._analyzer = build_analyzer()

    # -- life cycle -------------------------------------------------------------------

    def open(self) -> EmbeddedIndex:
        """Lock the directory, open (or create) both structures and load the records."""
        with self._lock:
            if self._index is not None:
                return self
            self.path.mkdir(parents=True, exist_ok=True)
            self._acquire_dir_lock()
            try:
                self._check_meta()
                self._open_bm25()
                self._open_vectors()
            except BaseException:
                self._release_dir_lock()
                raise
        return self

    def _acquire_dir_lock(self) -> None:
        handle = open(self.path / "LOCK", "a+")  # noqa: SIM115 - held for the index lifetime
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "unknown"
            handle.close()
            raise IndexInUseError(
                f"the index in {self.path} is in use by another Teller process (pid {owner}); "
                "send documents and searches to that server's API (for example "
                "`teller ingest --api http://HOST:PORT`), or stop it first"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._lock_file = handle

    def _release_dir_lock(self) -> None:
        if self._lock_file is not None:
            fcntl.flock(self._lock_file, fcntl.LOCK_UN)
            self._lock_file.close()
            self._lock_file = None

    def _check_meta(self) -> None:
        meta_path = self.path / _META_FILE
        if meta_path.exists():
            meta = json.loads(meta_path.read_text())
            if meta.get("dimension") != self.dimension:
                raise IncompatibleIndexError(
                    f"the index in {self.path} holds {meta.get('dimension')}-dimensional vectors "
                    f"but the embedding model makes {self.dimension}; run `teller reindex` "
                    "or point TELLER_DATA_DIR elsewhere"
                )
            if meta.get("format") != FORMAT_VERSION:
                raise IncompatibleIndexError(
                    f"the index in {self.path} has format {meta.get('format')}, this Teller "
                    f"reads {FORMAT_VERSION}; run `teller reindex`"
                )
        else:
            meta_path.write_text(
                json.dumps({"format": FORMAT_VERSION, "dimension": self.dimension})
            )

    def _open_bm25(self) -> None:
        bm25_dir = self.path / "bm25"
        bm25_dir.mkdir(exist_ok=True)
        self._schema_obj = build_schema()
        try:
            index = tantivy.Index(self._schema_obj, path=str(bm25_dir), reuse=True)
        except ValueError as exc:
            raise IncompatibleIndexError(
                f"the BM25 index in {bm25_dir} could not be opened ({exc}); run `teller reindex`"
            ) from exc
        index.register_tokenizer(ANALYZER_NAME, build_analyzer())
        self._index = index
        index.reload()
        self._searcher = index.searcher()
        self._records = load_records(self._searcher)

    def _open_vectors(self) -> None:
        vectors = VectorIndex(ndim=self.dimension, metric="cos", dtype="f32")
        snapshot = self.path / _VECTORS_FILE
        if snapshot.exists():
            try:
                vectors.load(str(snapshot))
            except Exception as exc:  # a torn or foreign file: rebuild from SQL
                log.warning("vector snapshot %s unreadable (%s); it will be rebuilt", snapshot, exc)
                vectors = VectorIndex(ndim=self.dimension, metric="cos", dtype="f32")
        self._vectors = vectors

    @staticmethod
    def set_aside(path: str | Path) -> Path | None:
        """Rename an index directory that cannot be opened (kept for inspection, not
        deleted) so a fresh one can be rebuilt from SQL. Refuses while a process owns it."""
        source = Path(path)
        if not source.exists():
            return None
        with open(source / "LOCK", "a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise IndexUnavailableError(
                    f"the index in {source} is in use by another Teller process; stop it first"
                ) from None
            stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
            target = source.with_name(f"{source.name}.set-aside-{stamp}")
            source.rename(target)
            fcntl.flock(handle, fcntl.LOCK_UN)
        log.warning("index %s could not be opened; moved it to %s", source, target)
        return target

    def close(self) -> None:
        with self._lock:
            if self._index is None:
                return
            self.flush()
            self._writer = None
            self._searcher = None
            self._index = None
            self._vectors = None
            self._records = {}
            self._release_dir_lock()

    def __enter__(self) -> EmbeddedIndex:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _require_open(self) -> tuple[tantivy.Index, tantivy.Searcher, VectorIndex]:
        if self._index is None or self._searcher is None or self._vectors is None:
            raise IndexUnavailableError("the embedded index is not open; call open() first")
        return self._index, self._searcher, self._vectors

    # -- writes -----------------------------------------------------------------------

    def upsert(self, chunks: Sequence[IndexedChunk]) -> None:
        if not chunks:
            return
        for chunk in chunks:
            if chunk.embedding is None:
                raise ValueError(f"chunk {chunk.key} has no embedding")
            if chunk.embedding.shape != (self.dimension,):
                raise ValueError(
                    f"chunk {chunk.key} has a {chunk.embedding.shape} embedding, "
                    f"expected ({self.dimension},)"
                )
        with self._lock:
            index, _, vectors = self._require_open()
            writer = self._get_writer(index)
            records = {chunk.key: record_for(chunk) for chunk in chunks}
            for chunk in chunks:
                writer.delete_documents_by_term("key", chunk.key)
                rec = records[chunk.key]
                doc = tantivy.Document()
                doc.add_integer("key", chunk.key)
                doc.add_text("body", chunk.indexed_text)
                if rec.product:
                    doc.add_text("product", rec.product)
                if rec.document_type:
                    doc.add_text("document_type", rec.document_type)
                doc.add_integer("valid_from", rec.valid_from)
                doc.add_integer("valid_until", rec.valid_until)
                doc.add_bytes("payload", payload(rec))
                writer.add_document(doc)
            self._commit(index, writer)
            keys = np.array([c.key for c in chunks], dtype=np.uint64)
            present = [int(k) for k in keys if vectors.contains(int(k))]
            if present:
                vectors.remove(present)
            matrix = np.stack([c.embedding for c in chunks if c.embedding is not None])
            vectors.add(keys, matrix.astype(np.float32, copy=False))
            self._records.update(records)
            self._vectors_dirty = True

    def delete(self, keys: Sequence[int]) -> None:
        if not keys:
            return
        with self._lock:
            index, _, vectors = self._require_open()
            writer = self._get_writer(index)
            for key in keys:
                writer.delete_documents_by_term("key", int(key))
            self._commit(index, writer)
            present = [int(k) for k in keys if vectors.contains(int(k))]
            if present:
                vectors.remove(present)
                self._vectors_dirty = True
            for key in keys:
                self._records.pop(int(key), None)

    def _get_writer(self, index: tantivy.Index) -> tantivy.IndexWriter:
        if self._writer is None:
            self._writer = index.writer(heap_size=64_000_000, num_threads=1)
        return self._writer

    def _commit(self, index: tantivy.Index, writer: tantivy.IndexWriter) -> None:
        try:
            writer.commit()
        except Exception as exc:
            writer.rollback()
            raise IndexUnavailableError(f"the BM25 index could not be written: {exc}") from exc
        index.reload()
        self._searcher = index.searcher()

    def flush(self) -> None:
        with self._lock:
            if self._vectors is None or not self._vectors_dirty:
                return
            target = self.path / _VECTORS_FILE
            tmp = target.with_suffix(".tmp")
            self._vectors.save(str(tmp))
            os.replace(tmp, target)
            self._vectors_dirty = False
