"""Response parsing for the Elasticsearch backend: search hits, scanned documents and
error objects, read back into Teller's types.

Pure functions, unit-tested without a server. Hits of the two legs are fused here
exactly as the embedded index fuses them (`fused_hits`), or kept in the server's order
after an `rrf` retriever search (`rrf_hits`).

Elasticsearch scores a cosine kNN hit as ``(1 + cos) / 2``; `cosine_from_knn_score`
turns it back into the cosine similarity the embedded index reports, so
`SearchHit.dense_score` means the same thing on both backends.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from retrieval import fusion
from retrieval.es_mapping import VECTOR_FIELD
from retrieval.types import FusionMethod, IndexedChunk, SearchHit


def cosine_from_knn_score(score: float) -> float:
    """Invert Elasticsearch's cosine kNN score ``(1 + cos) / 2``."""
    return 2.0 * score - 1.0


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
