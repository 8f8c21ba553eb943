"""Passage search over the knowledge base."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool

from bot.api.deps import KnowledgeDep
from bot.api.errors import body_limited
from bot.api.schemas import JSON_BODY_LIMIT, HitOut, SearchIn, SearchOut
from bot.knowledge import SearchResult
from retrieval.types import SearchRequest

router = APIRouter(prefix="/v1", tags=["search"], **body_limited(JSON_BODY_LIMIT))


@router.post("/search", response_model=SearchOut)
async def search(body: SearchIn, knowledge: KnowledgeDep) -> SearchOut:
    """Hybrid (BM25 + dense) passage search with per-retriever and fused scores."""
    request = SearchRequest(
        query=body.query, k=body.k, filters=body.filters.to_domain(), mode=body.mode
    )
    result = await run_in_threadpool(knowledge.search, request)
    return to_search_out(body.query, body.mode, result)


def to_search_out(query: str, mode: str, result: SearchResult) -> SearchOut:
    return SearchOut(
        query=query,
        mode=mode,
        hits=[
            HitOut(
                rank=h.rank,
                chunk_id=h.key,
                doc_id=h.doc_id,
                version=h.version,
                title=h.title,
                section=list(h.section_path),
                text=h.text,
                metadata=dict(h.metadata),
                score=h.score,
                bm25_score=h.bm25_score,
                dense_score=h.dense_score,
            )
            for h in result.hits
        ],
        timings_ms={k: round(v, 3) for k, v in result.timings_ms.items()},
        reranker_version=result.reranker_version,
    )
