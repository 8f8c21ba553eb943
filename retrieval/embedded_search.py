"""Reads of the embedded index: `keys`, `count` and `search`.

`EmbeddedSearch`, the base class of `EmbeddedIndex`, answers searches: the BM25 leg is
a tantivy boolean query over the analysed query terms with the filters as unscored
clauses; the dense leg is a usearch search with the filters applied to its matches
(exact search below `exact_threshold`, an over-fetch above); `retrieval.fusion` fuses
the two. `EmbeddedIndex` (in `retrieval.embedded`) opens the structures, holds the
writes and sets the attributes declared here.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import tantivy
from usearch.index import Index as VectorIndex

from retrieval import fusion
from retrieval.analysis import query_terms
from retrieval.embedded_store import NO_END, NO_START, Record
from retrieval.types import FusionMethod, SearchFilters, SearchHit, SearchRequest, Vector


class EmbeddedSearch:
    """Keys, count and search over the open structures; the base of `EmbeddedIndex`,
    whose constructor and `open()` set the attributes declared here."""

    fusion: FusionMethod
    dense_weight: float
    rrf_k: int
    candidates: int
    exact_threshold: int
    _lock: threading.RLock
    _records: dict[int, Record]
    _schema_obj: tantivy.Schema
    _analyzer: tantivy.TextAnalyzer

    if TYPE_CHECKING:  # defined by EmbeddedIndex

        def _require_open(self) -> tuple[tantivy.Index, tantivy.Searcher, VectorIndex]: ...

    # -- reads ------------------------------------------------------------------------

    def keys(self) -> set[int]:
        with self._lock:
            _, _, vectors = self._require_open()
            return {key for key in self._records if vectors.contains(key)}

    def count(self) -> int:
        with self._lock:
            self._require_open()
            return len(self._records)

    def document_frequencies(self, terms: Sequence[str]) -> tuple[int, dict[str, int]]:
        with self._lock:
            _, searcher, _ = self._require_open()
            return searcher.num_docs, {t: int(searcher.doc_freq("body", t)) for t in terms}

    def search(self, request: SearchRequest, query_vector: Vector | None = None) -> list[SearchHit]:
        if request.k < 1:
            raise ValueError("k must be at least 1")
        if request.mode != "bm25" and query_vector is None:
            raise ValueError(f"{request.mode} search needs the query vector")
        with self._lock:
            _, searcher, vectors = self._require_open()
            n = max(self.candidates, request.k)
            sparse = self._bm25(searcher, request, n) if request.mode != "dense" else {}
            dense = (
                self._dense(vectors, query_vector, request.filters, n)
                if request.mode != "bm25" and query_vector is not None
                else {}
            )
            if request.mode == "bm25":
                fused = dict(sparse)
            elif request.mode == "dense":
                fused = dict(dense)
            elif self.fusion == "rrf":
                fused = fusion.rrf(dense, sparse, k=self.rrf_k)
            else:
                fused = fusion.convex(dense, sparse, dense_weight=self.dense_weight)
            hits = []
            for rank, (key, score) in enumerate(fusion.top_k(fused, request.k), start=1):
                rec = self._records.get(key)
                if rec is None:  # in one structure only: reconciliation will repair it
                    continue
                hits.append(
                    SearchHit(
                        key=key,
                        doc_id=rec.doc_id,
                        version=rec.version,
                        title=rec.title,
                        section_path=rec.section_path,
                        text=rec.text,
                        metadata=rec.metadata,
                        score=float(score),
                        bm25_score=sparse.get(key),
                        dense_score=dense.get(key),
                        rank=rank,
                    )
                )
            return hits

    def _bm25(self, searcher: tantivy.Searcher, request: SearchRequest, n: int) -> dict[int, float]:
        terms = query_terms(self._analyzer, request.query)
        if not terms:
            return {}
        schema = self._schema_obj
        should = [
            (
                tantivy.Occur.Should,
                tantivy.Query.boost_query(
                    tantivy.Query.term_query(schema, "body", t.term, index_option="freq"), t.boost
                ),
            )
            for t in terms
        ]
        query = tantivy.Query.boolean_query(should)
        clauses = self._filter_clauses(request.filters)
        if clauses:
            query = tantivy.Query.boolean_query([(tantivy.Occur.Must, query), *clauses])
        result: dict[int, float] = {}
        for score, address in searcher.search(query, n, count=False).hits:
            result[int(searcher.doc(address)["key"][0])] = float(score)
        return result

    def _filter_clauses(self, filters: SearchFilters) -> list[tuple[tantivy.Occur, tantivy.Query]]:
        schema = self._schema_obj
        clauses: list[tantivy.Query] = []
        if filters.product is not None:
            clauses.append(tantivy.Query.term_query(schema, "product", filters.product.lower()))
        if filters.document_type is not None:
            clauses.append(
                tantivy.Query.term_query(schema, "document_type", filters.document_type.lower())
            )
        if filters.valid_on is not None:
            day = filters.valid_on.toordinal()
            clauses.append(
                tantivy.Query.range_query(
                    schema, "valid_from", tantivy.FieldType.Integer, NO_START, day
                )
            )
            clauses.append(
                tantivy.Query.range_query(
                    schema, "valid_until", tantivy.FieldType.Integer, day, NO_END
                )
            )
        return [(tantivy.Occur.Must, tantivy.Query.const_score_query(c, 0.0)) for c in clauses]

    def _dense(
        self, vectors: VectorIndex, query_vector: Vector, filters: SearchFilters, n: int
    ) -> dict[int, float]:
        size = len(vectors)
        if size == 0:
            return {}
        exact = size <= self.exact_threshold
        # Filters are applied after the vector search: exact search scans everything
        # below the threshold; above it we over-fetch (documented in the README).
        want = n if filters.is_empty() else size if exact else n * 10
        matches = vectors.search(
            np.asarray(query_vector, dtype=np.float32), min(want, size), exact=exact
        )
        result: dict[int, float] = {}
        for key, distance in zip(matches.keys, matches.distances, strict=True):
            key = int(key)
            rec = self._records.get(key)
            if rec is None or not rec.matches(filters):
                continue
            result[key] = 1.0 - float(distance)
            if len(result) >= n:
                break
        return result
