"""Request bodies and response parsing for the Elasticsearch backend.

Pure functions, unit-tested without a server. Both retrieval legs get the same filter
clauses, so a filter never applies to one leg only:

* BM25: `match` on `content` (analysed with the synonym-expanding search analyser)
  inside a `bool` whose `filter` holds the metadata clauses.
* kNN: top-level `knn` (or a `knn` retriever) on `embedding` with the same clauses as
  its `filter`, which Elasticsearch applies *during* the HNSW search (pre-filtering),
  so a filtered query still gets `k` hits when `k` matching chunks exist.

Elasticsearch scores a cosine kNN hit as ``(1 + cos) / 2``; `cosine_from_knn_score`
turns it back into the cosine similarity the embedded index reports, so
`SearchHit.dense_score` means the same thing on both backends.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from retrieval import fusion
from retrieval.es_mapping import TEXT_FIELD, VECTOR_FIELD
from retrieval.types import FusionMethod, IndexedChunk, SearchFilters, SearchHit, Vector

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


def cosine_from_knn_score(score: float) -> float:
    """Invert Elasticsearch's cosine kNN score ``(1 + cos) / 2``."""
    return 2.0 * score - 1.0


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


# -- responses ------------------------------------------------------------------------


def hit_key(hit: Mapping[str, Any]) -> int:
    return int(hit["_id"])


def leg_scores(response: Mapping[str, Any], *, dense: bool) -> dict[int, float]:
    """`{key: raw score}` of one leg's search response (cosine for the dense leg)."""
    scores: dict[int, float] = {}
    for hit in response.get("hits", {}).get("hits", []):
        score = float(hit["_score"])
        scores[hit_key(hit)] = cosine_from_knn_score(score) if dense else score
    return scores


def sources(*responses: Mapping[str, Any]) -> dict[int, Mapping[str, Any]]:
    """`{key: _source}` over the hits of several responses."""
    found: dict[int, Mapping[str, Any]] = {}
    for response in responses:
        for hit in response.get("hits", {}).get("hits", []):
            found.setdefault(hit_key(hit), hit.get("_source", {}))
    return found


def rrf_leg_scores(hit: Mapping[str, Any]) -> tuple[float | None, float | None]:
    """`(bm25_score, dense_score)` from an `rrf` hit's explanation; None where a leg
    did not return the hit (its rank is 0) or the explanation has another shape.

    The explanation (8.15+) has one detail per child retriever, in request order;
    a detail's `value` is the hit's rank in that leg, its first sub-detail the leg's
    own explanation, whose `value` is the raw score.
    """
    details = hit.get("_explanation", {}).get("details", [])
    scores: list[float | None] = []
    for position in range(2):
        try:
            leg = details[position]
            raw = float(leg["details"][0]["value"]) if leg.get("value", 0) > 0 else None
        except (AttributeError, IndexError, KeyError, TypeError, ValueError):
            raw = None
        scores.append(raw)
    bm25, dense = scores
    return bm25, None if dense is None else cosine_from_knn_score(dense)


def search_hit(
    key: int,
    source: Mapping[str, Any],
    *,
    score: float,
    rank: int,
    bm25_score: float | None,
    dense_score: float | None,
) -> SearchHit:
    """A `SearchHit` from a document's `_source`."""
    return SearchHit(
        key=key,
        doc_id=str(source.get("doc_id", "")),
        version=int(source.get("version", 0)),
        title=str(source.get("title", "")),
        section_path=tuple(source.get("section_path") or ()),
        text=str(source.get("text", "")),
        metadata=dict(source.get("metadata") or {}),
        score=float(score),
        bm25_score=bm25_score,
        dense_score=dense_score,
        rank=rank,
    )


def chunk_from_source(key: int, source: Mapping[str, Any]) -> IndexedChunk:
    """Rebuild an `IndexedChunk` (embedding included when the source has it)."""
    raw_vector = source.get(VECTOR_FIELD)
    embedding = None if raw_vector is None else np.asarray(raw_vector, dtype=np.float32)
    return IndexedChunk(
        key=key,
        doc_id=str(source["doc_id"]),
        version=int(source["version"]),
        ordinal=int(source.get("ordinal", 0)),
        title=str(source.get("title", "")),
        section_path=tuple(source.get("section_path") or ()),
        text=str(source.get("text", "")),
        context=str(source.get("context", "")),
        metadata=dict(source.get("metadata") or {}),
        embedding=embedding,
    )


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


def item_error(item: Mapping[str, Any]) -> str:
    """`type: reason` of an error object from `_msearch` or `_bulk`."""
    error = item.get("error", {})
    if isinstance(error, Mapping):
        cause = error.get("caused_by", {})
        reason = error.get("reason", "")
        if isinstance(cause, Mapping) and cause.get("reason"):
            reason = f"{reason} ({cause.get('type')}: {cause.get('reason')})"
        return f"{error.get('type', 'error')}: {reason}"
    return str(error)


def fused_hits(
    sparse: Mapping[int, float],
    dense: Mapping[int, float],
    found: Mapping[int, Mapping[str, Any]],
    *,
    k: int,
    method: FusionMethod | None,
    dense_weight: float,
    rrf_k: int,
) -> list[SearchHit]:
    """The `k` best hits of the two legs, fused exactly as the embedded index fuses.

    `method=None` means a single-leg search: the one non-empty leg's raw scores rank.
    """
    if method is None:
        fused = dict(sparse or dense)
    elif method == "rrf":
        fused = fusion.rrf(dense, sparse, k=rrf_k)
    else:
        fused = fusion.convex(dense, sparse, dense_weight=dense_weight)
    return [
        search_hit(
            key,
            found[key],
            score=score,
            rank=rank,
            bm25_score=sparse.get(key),
            dense_score=dense.get(key),
        )
        for rank, (key, score) in enumerate(fusion.top_k(fused, k), start=1)
    ]


def rrf_hits(hits: Sequence[Mapping[str, Any]]) -> list[SearchHit]:
    """Hits of an `rrf` retriever search, in the server's order.

    The server gives each leg weight 1 and `fusion.rrf` gives each 0.5, so the score
    is halved: both backends then report the same RRF score for the same ranks.
    """
    results = []
    for rank, hit in enumerate(hits, start=1):
        bm25, dense = rrf_leg_scores(hit)
        results.append(
            search_hit(
                hit_key(hit),
                hit.get("_source", {}),
                score=0.5 * float(hit["_score"]),
                rank=rank,
                bm25_score=bm25,
                dense_score=dense,
            )
        )
    return results
