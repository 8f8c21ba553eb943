"""Conversions between search hits, passages, citations, traces and results."""

from __future__ import annotations

from typing import Any

from bot.answers.types import AnswerResult, Citation
from bot.generation.grounding import GroundingReport
from bot.generation.types import Passage
from retrieval.types import SearchHit


def hit_url(hit: SearchHit) -> str | None:
    """The link a hit's document declares in its metadata (`url`, else `link`), if any."""
    url = hit.metadata.get("url") or hit.metadata.get("link")
    return str(url) if url else None


def passage_from_hit(number: int, hit: SearchHit) -> Passage:
    """The generator's view of a search hit, numbered as it will be cited."""
    return Passage(
        number=number,
        doc_id=hit.doc_id,
        version=hit.version,
        chunk_key=hit.key,
        title=hit.title,
        section_path=tuple(hit.section_path),
        text=hit.text,
        score=hit.score,
        url=hit_url(hit),
    )


def citation_from_passage(passage: Passage) -> Citation:
    """The citation shown to the user for a cited passage."""
    return Citation(
        number=passage.number,
        kind="passage",
        title=passage.title or passage.doc_id,
        doc_id=passage.doc_id,
        version=passage.version,
        chunk_id=passage.chunk_key,
        section=tuple(s for s in passage.section_path if s != passage.title),
        url=passage.url,
        snippet=passage.text[:300],
    )


def hit_trace(hit: SearchHit) -> dict[str, Any]:
    """One retrieved hit as recorded in the answer trace."""
    return {
        "rank": hit.rank,
        "chunk_id": hit.key,
        "doc_id": hit.doc_id,
        "version": hit.version,
        "score": round(hit.score, 6),
        "bm25_score": None if hit.bm25_score is None else round(hit.bm25_score, 6),
        "dense_score": None if hit.dense_score is None else round(hit.dense_score, 6),
    }


def grounding_trace(report: GroundingReport) -> dict[str, Any]:
    """The grounding report as stored in an answer's trace."""
    return {
        "ok": report.ok,
        "figures": [f.raw for f in report.figures],
        "unsupported": list(report.unsupported),
    }


def result_from_dict(data: dict[str, Any]) -> AnswerResult:
    """The `AnswerResult` of a `final` stream event's data."""
    return AnswerResult(
        conversation_id=data["conversation_id"],
        answer_id=data["answer_id"],
        text=data["text"],
        citations=[Citation(**{**c, "section": tuple(c["section"])}) for c in data["citations"]],
        confidence=data["confidence"],
        handoff_suggested=data["handoff_suggested"],
        degraded=data["degraded"],
        kind=data["kind"],
        choices=list(data["choices"]),
        handoff_reference=data["handoff_reference"],
    )
