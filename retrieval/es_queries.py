"""Request bodies for the Elasticsearch backend: searches, scans, stored documents and
bulk actions. `es_responses` parses what comes back (its `leg_scores`, `rrf_leg_scores`
and `chunk_from_source` are re-exported here, where they used to live).

Pure functions, unit-tested without a server. Both retrieval legs get the same filter
clauses, so a filter never applies to one leg only:

* BM25: `match` on `content` (analysed with the synonym-expanding search analyser)
  inside a `bool` whose `filter` holds the metadata clauses.
* kNN: top-level `knn` (or a `knn` retriever) on `embedding` with the same clauses as
  its `filter`, which Elasticsearch applies *during* the HNSW search (pre-filtering),
  so a filtered query still gets `k` hits when `k` matching chunks exist.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from retrieval.es_mapping import TEXT_FIELD, VECTOR_FIELD
from retrieval.es_responses import chunk_from_source as chunk_from_source
from retrieval.es_responses import leg_scores as leg_scores
from retrieval.es_responses import rrf_leg_scores as rrf_leg_scores
from retrieval.types import IndexedChunk, SearchFilters, Vector

# Fields returned with every hit; the vector stays on the server.
SOURCE_FIELDS = ("key", "doc_id", "version", "ordinal", "title", "section_path", "text", "metadata")
MAX_NUM_CANDIDATES = 10_000


def iso_day(value: Any) -> str | None:
    """A metadata date (date, datetime or ISO string) as ``YYYY-MM-DD``; None when empty.

    Raises ValueError for text that is not an ISO date, as the embedded index does.
    """
    if value in (None, ""):
        return None
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return dt.date.fromisoformat(str(value)[:10]).isoformat()


def _lower(value: Any) -> str | None:
    return str(value).lower() if value else None


def filter_clauses(filters: SearchFilters) -> list[dict[str, Any]]:
    """Filter-context clauses for `filters` (empty when there is nothing to filter).

    `valid_on` keeps chunks with ``effective_from <= day <= effective_until``; a missing
    bound is open, hence `must_not` of the two violating ranges instead of two ranges.
    """
    clauses: list[dict[str, Any]] = []
    if filters.product is not None:
        clauses.append({"term": {"product": filters.product.lower()}})
    if filters.document_type is not None:
        clauses.append({"term": {"document_type": filters.document_type.lower()}})
    if filters.valid_on is not None:
        day = filters.valid_on.isoformat()
        clauses.append(
            {
                "bool": {
                    "must_not": [
                        {"range": {"effective_from": {"gt": day}}},
                        {"range": {"effective_until": {"lt": day}}},
                    ]
                }
            }
        )
    return clauses


def num_candidates(k: int) -> int:
    """HNSW candidates explored per shard: twice `k` (at least 100), capped at 10,000.

    Extra candidates make up for the recall lost to int8 quantisation.
    """
    return min(MAX_NUM_CANDIDATES, max(k, 2 * k, 100))


def bm25_query(query: str, filters: SearchFilters) -> dict[str, Any]:
    """The BM25 leg as a query (scored `match`, unscored filter clauses)."""
    body: dict[str, Any] = {"must": [{"match": {TEXT_FIELD: {"query": query}}}]}
    clauses = filter_clauses(filters)
    if clauses:
        body["filter"] = clauses
    return {"bool": body}


def knn_clause(vector: Vector, filters: SearchFilters, k: int) -> dict[str, Any]:
    """The kNN leg (the body of a top-level `knn` or of a `knn` retriever)."""
    clause: dict[str, Any] = {
        "field": VECTOR_FIELD,
        "query_vector": vector_to_json(vector),
        "k": k,
        "num_candidates": num_candidates(k),
    }
    clauses = filter_clauses(filters)
    if clauses:
        clause["filter"] = {"bool": {"filter": clauses}}
    return clause


def _common(size: int) -> dict[str, Any]:
    return {"size": size, "_source": list(SOURCE_FIELDS), "track_total_hits": False}


def bm25_body(query: str, filters: SearchFilters, size: int) -> dict[str, Any]:
    """Search body of the BM25 leg: the `size` best chunks by BM25."""
    return {**_common(size), "query": bm25_query(query, filters)}


def knn_body(vector: Vector, filters: SearchFilters, size: int) -> dict[str, Any]:
    """Search body of the dense leg: the `size` nearest chunks by cosine similarity."""
    return {**_common(size), "knn": knn_clause(vector, filters, size)}


def hybrid_msearch_body(
    query: str, vector: Vector, filters: SearchFilters, size: int
) -> list[dict[str, Any]]:
    """`_msearch` body running both legs in one HTTP request (client-side fusion).

    The empty headers make each search use the index in the request path.
    """
    return [{}, bm25_body(query, filters, size), {}, knn_body(vector, filters, size)]


def rrf_retriever_body(
    query: str,
    vector: Vector,
    filters: SearchFilters,
    *,
    k: int,
    window: int,
    rank_constant: int,
) -> dict[str, Any]:
    """Search body fusing both legs on the server with the `rrf` retriever (8.16+).

    `window` (`rank_window_size`) is how many hits of each leg take part, like the
    embedded index's `candidates`. `explain` makes each hit carry its rank and raw
    score in every leg (parsed by `rrf_leg_scores`); it costs a little work for the
    `k` returned hits only.
    """
    if window < k:
        raise ValueError("window must be at least k")
    return {
        "size": k,
        "_source": list(SOURCE_FIELDS),
        "explain": True,
        "retriever": {
            "rrf": {
                "retrievers": [
                    {"standard": {"query": bm25_query(query, filters)}},
                    {"knn": knn_clause(vector, filters, window)},
                ],
                "rank_window_size": window,
                "rank_constant": rank_constant,
            }
        },
    }


def vector_to_json(vector: Vector) -> list[float]:
    """A float32 vector as a JSON list of floats."""
    return [float(x) for x in np.asarray(vector, dtype=np.float32).ravel()]


def scan_body(
    after: int | None, size: int, *, with_source: bool, exclude_vectors_option: bool
) -> dict[str, Any]:
    """One page of a walk over all chunks in key order (`search_after` on `key`).

    `exclude_vectors_option` adds ``"exclude_vectors": false`` to `_source`, which
    9.2+ needs to return vectors (it leaves them out of `_source` by default) and
    older servers reject.
    """
    body: dict[str, Any] = {
        "size": size,
        "query": {"match_all": {}},
        "sort": [{"key": "asc"}],
        "track_total_hits": False,
    }
    if not with_source:
        body["_source"] = False
    elif exclude_vectors_option:
        body["_source"] = {"exclude_vectors": False}
    if after is not None:
        body["search_after"] = [after]
    return body


# -- documents and bulk actions -------------------------------------------------------


def chunk_document(chunk: IndexedChunk) -> dict[str, Any]:
    """The `_source` stored for one chunk.

    Metadata goes through JSON (dates become ISO strings) so search hits return the
    same metadata the embedded index returns.
    """
    meta = chunk.metadata
    doc: dict[str, Any] = {
        "key": chunk.key,
        "doc_id": chunk.doc_id,
        "version": chunk.version,
        "ordinal": chunk.ordinal,
        "title": chunk.title,
        "section_path": list(chunk.section_path),
        "context": chunk.context,
        "text": chunk.text,
        "metadata": json.loads(json.dumps(dict(meta), ensure_ascii=False, default=str)),
    }
    optional = {
        "product": _lower(meta.get("product")),
        "document_type": _lower(meta.get("document_type")),
        "effective_from": iso_day(meta.get("effective_from")),
        "effective_until": iso_day(meta.get("effective_until")),
    }
    doc.update({name: value for name, value in optional.items() if value is not None})
    if chunk.embedding is not None:
        doc[VECTOR_FIELD] = vector_to_json(chunk.embedding)
    return doc


def index_action(index: str, chunk: IndexedChunk) -> dict[str, Any]:
    """Bulk action that creates or replaces the chunk's document (`_id` = key)."""
    return {
        "_op_type": "index",
        "_index": index,
        "_id": str(chunk.key),
        "_source": chunk_document(chunk),
    }


def delete_action(index: str, key: int) -> dict[str, Any]:
    """Bulk action that deletes the chunk `key` (a missing one answers 404: ignored)."""
    return {"_op_type": "delete", "_index": index, "_id": str(key)}


def document_frequencies_body(terms: Sequence[str]) -> dict[str, Any]:
    """One `_search` that counts all chunks (`hits.total`) and, per term, the chunks
    whose searchable text holds it (a `filter` aggregation `t<i>` around a `term` query:
    the term is matched as indexed, not analysed again)."""
    return {
        "size": 0,
        "track_total_hits": True,
        "query": {"match_all": {}},
        "aggs": {f"t{i}": {"filter": {"term": {TEXT_FIELD: term}}} for i, term in enumerate(terms)},
    }
