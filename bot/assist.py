"""Agent assist: suggested answers for the caller's last turn, for call-center agents.

The console sends the whole live transcript each time; the last customer turn is
answered by the answer pipeline (stored like every answer, channel "agent"), and up to
`ALTERNATES` more suggestions are composed extractively from other well-matching
passages, each stored as an answer of its own so the agent's copy, edit or reject can be
recorded as feedback on it. The transcript, and for each answered turn the suggestions,
passages and rates the agent saw, are kept in the conversation's metadata (under
"assist"), so a call can be reopened later. Asking again for a turn already answered
returns the stored suggestions: retries never create duplicates.

The routes are in `bot.api.routes.assist`, the request and response bodies in
`bot.api.schemas`.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.answers.convert import hit_trace, hit_url, passage_from_hit
from bot.answers.pipeline import AnswerPipeline
from bot.api.schemas import (
    AssistConversationOut,
    AssistListOut,
    AssistOut,
    AssistSummaryOut,
    AssistTurnOut,
    CitationOut,
    PassageOut,
    RateRowOut,
    SuggestionOut,
    TurnIn,
)
from bot.generation.grounding import check_grounding
from bot.generation.types import GenerationRequest
from bot.rates import detect_rate_question, match_products
from bot.runtime import Runtime
from db import conversations as convo_repo
from db import rates as rates_repo
from db.base import utcnow
from db.models import Answer, Conversation, RateRow
from retrieval.errors import DocumentNotFoundError
from retrieval.types import SearchFilters, SearchHit, SearchRequest

log = logging.getLogger(__name__)

ALTERNATES = 2
"""Suggestions composed from other passages, besides the pipeline's own answer."""
PASSAGES = 5
"""Passages shown to the agent for each customer turn."""
_META_KEY = "assist"


def suggest(
    runtime: Runtime, conversation_id: str | None, transcript: Sequence[TurnIn]
) -> AssistOut:
    """Answer the last customer turn of `transcript` (or return the stored suggestions)."""
    turn = _last_customer_turn(transcript)
    turns_json = [t.model_dump() for t in transcript]
    with runtime.sessions.begin() as session:
        conversation = _open(session, conversation_id)
        conversation_id = conversation.id
        stored = _stored(conversation)
        cached = next(
            (
                r
                for r in stored["turns"]
                if turn is not None and r["turn"] == turn and r["text"] == transcript[turn].text
            ),
            None,
        )
        _write(conversation, {**stored, "transcript": turns_json})
        if turn is None:
            return AssistOut(
                conversation_id=conversation_id, turn=None, suggestions=[], passages=[], rates=[]
            )
        if cached is not None:
            answers = _answers(session, cached["answer_ids"])
            return AssistOut(
                conversation_id=conversation_id,
                turn=turn,
                suggestions=[
                    _suggestion(answers[i], []) for i in cached["answer_ids"] if i in answers
                ],
                passages=[PassageOut.model_validate(p) for p in cached["passages"]],
                rates=[RateRowOut.model_validate(r) for r in cached["rates"]],
            )

    text = transcript[turn].text
    pipeline = runtime.answers
    result = pipeline.answer(text, conversation_id=conversation_id, channel="agent")
    today = dt.date.today()
    with runtime.sessions() as session:
        primary = convo_repo.get_answer(session, answer_id=result.answer_id)
        query = (primary.rewritten_query if primary else None) or text
    hits = pipeline.knowledge.search(
        SearchRequest(query=query, k=PASSAGES, filters=SearchFilters(valid_on=today))
    ).hits
    passages = [_passage_out(hit) for hit in hits]
    rates = [
        RateRowOut.model_validate(row, from_attributes=True)
        for row in _rates_for(runtime, query, today)
    ]

    with runtime.sessions.begin() as session:
        answer_ids = [result.answer_id]
        if result.kind == "knowledge":
            cited = {c.chunk_id for c in result.citations}
            answer_ids += _store_alternates(
                session, pipeline, conversation_id, text, query, hits, cited, today
            )
        current = session.get(Conversation, conversation_id, with_for_update=True)
        assert current is not None  # created above; conversations are never deleted here
        stored = _stored(current)
        record = {
            "turn": turn,
            "text": text,
            "answer_ids": answer_ids,
            "passages": [p.model_dump(mode="json") for p in passages],
            "rates": [r.model_dump(mode="json") for r in rates],
            "at": utcnow().isoformat(),
        }
        kept = [r for r in stored["turns"] if r["turn"] != turn]
        _write(current, {**stored, "transcript": turns_json, "turns": [*kept, record]})
        answers = _answers(session, answer_ids)
        return AssistOut(
            conversation_id=conversation_id,
            turn=turn,
            suggestions=[_suggestion(answers[i], []) for i in answer_ids],
            passages=passages,
            rates=rates,
        )


def recent_calls(runtime: Runtime, limit: int) -> AssistListOut:
    """The `limit` most recent agent conversations, newest first."""
    statement = (
        select(Conversation)
        .where(Conversation.channel == "agent")
        .order_by(Conversation.updated_at.desc())
        .limit(limit)
    )
    with runtime.sessions() as session:
        conversations = list(session.scalars(statement))
        return AssistListOut(conversations=[_summary(c) for c in conversations])


def reopen_call(runtime: Runtime, conversation_id: str) -> AssistConversationOut:
    """A call with its transcript, and per customer turn its suggestions and feedback;
    `DocumentNotFoundError` when there is no conversation with that id."""
    with runtime.sessions() as session:
        conversation = convo_repo.get_conversation(session, conversation_id=conversation_id)
        if conversation is None:
            raise DocumentNotFoundError(f"no conversation with id {conversation_id!r}")
        stored = _stored(conversation)
        ids = [i for record in stored["turns"] for i in record["answer_ids"]]
        answers = _answers(session, ids)
        votes = _feedback(session, ids)
        turns = [
            AssistTurnOut(
                turn=record["turn"],
                text=record["text"],
                suggestions=[
                    _suggestion(answers[i], votes.get(i, [])) for i in record["answer_ids"]
                ],
                passages=[PassageOut.model_validate(p) for p in record["passages"]],
                rates=[RateRowOut.model_validate(r) for r in record["rates"]],
                created_at=record.get("at"),
            )
            for record in stored["turns"]
            if all(i in answers for i in record["answer_ids"])
        ]
        return AssistConversationOut(
            conversation_id=conversation.id,
            channel=conversation.channel,
            created_at=conversation.created_at,
            updated_at=conversation.updated_at,
            transcript=[TurnIn.model_validate(t) for t in stored["transcript"]],
            turns=turns,
        )


def _last_customer_turn(transcript: Sequence[TurnIn]) -> int | None:
    for index in range(len(transcript) - 1, -1, -1):
        if transcript[index].speaker == "customer":
            return index
    return None


def _open(session: Session, conversation_id: str | None) -> Conversation:
    return convo_repo.ensure_conversation(
        session, conversation_id=conversation_id, channel="agent", lock=True
    )


def _stored(conversation: Conversation) -> dict[str, Any]:
    stored = dict((conversation.meta or {}).get(_META_KEY) or {})
    stored.setdefault("transcript", [])
    stored.setdefault("turns", [])
    return stored


def _write(conversation: Conversation, stored: dict[str, Any]) -> None:
    # A new dict, so SQLAlchemy sees the JSON column change.
    conversation.meta = {**(conversation.meta or {}), _META_KEY: stored}
    conversation.updated_at = utcnow()


def _store_alternates(
    session: Session,
    pipeline: AnswerPipeline,
    conversation_id: str,
    question: str,
    query: str,
    hits: Sequence[SearchHit],
    exclude: set[int | None],
    today: dt.date,
) -> list[str]:
    """Compose one answer from each of the best passages the pipeline's answer left out."""
    ids: list[str] = []
    seen: set[str] = set()
    check = pipeline.coverage_check(query)
    for hit in sorted(hits, key=lambda h: h.dense_score or 0.0, reverse=True):
        if len(ids) >= ALTERNATES:
            break
        confidence = hit.dense_score or 0.0
        if hit.key in exclude or confidence < pipeline.min_confidence:
            continue
        passage = passage_from_hit(1, hit)
        generation = pipeline.fallback.generate(
            GenerationRequest(question=query, passages=[passage])
        )
        text = generation.text.strip()
        report = check_grounding(text, [passage.text])
        if not text or not generation.cited or not report.ok or text in seen:
            continue
        # The same test as the pipeline's answer: an alternate about something else
        # costs the agent time to read and reject.
        covered = check.of([text], [passage.heading], confidence)
        if check.fails(covered):
            continue
        seen.add(text)
        citation = {
            "number": 1,
            "kind": "passage",
            "title": passage.title or passage.doc_id,
            "doc_id": passage.doc_id,
            "version": passage.version,
            "chunk_id": passage.chunk_key,
            "section": [s for s in passage.section_path if s != passage.title],
            "url": passage.url,
            "rate_row_id": None,
            "snippet": passage.text[:300],
        }
        trace = {
            "route": "knowledge",
            "variant": "assist-alternate",
            "filters": {"valid_on": today.isoformat()},
            "retrieved": [hit_trace(hit)],
            "confidence": confidence,
            "grounding": {"ok": report.ok, "figures": [f.raw for f in report.figures]},
            "coverage": check.trace(covered),
        }
        answer = convo_repo.save_answer(
            session,
            question=question,
            rewritten_query=query,
            text=text,
            kind="knowledge",
            channel="agent",
            generator=generation.generator,
            generator_version=generation.version,
            conversation_id=conversation_id,
            citations=[citation],
            confidence=min(max(confidence, 0.0), 1.0),
            trace=trace,
        )
        ids.append(answer.id)
    return ids


def _rates_for(runtime: Runtime, query: str, today: dt.date) -> list[RateRow]:
    """The current rate rows a rate question is about; none for other questions."""
    with runtime.sessions() as session:
        products = rates_repo.list_products(session)
        rate_query = detect_rate_question(query, products=products)
        if rate_query is None:
            return []
        rows = rates_repo.current_rates(session, on=today)
    matched = set(match_products(rate_query, [row.product for row in rows]))
    chosen = [row for row in rows if row.product in matched] or rows
    if rate_query.term_months is not None:
        same_term = [row for row in chosen if row.term_months == rate_query.term_months]
        chosen = same_term or chosen
    return chosen


def _answers(session: Session, ids: Iterable[str]) -> dict[str, Answer]:
    wanted = list(dict.fromkeys(ids))
    if not wanted:
        return {}
    rows = session.scalars(select(Answer).where(Answer.id.in_(wanted)))
    return {row.id: row for row in rows}


def _feedback(session: Session, answer_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """The live votes on these answers, by answer id, oldest first.

    Each vote as `{"rating", "reasons", "comment", "correction", "rater": {"kind", "id"},
    "created_at"}`.
    """
    from db import feedback as feedback_repo

    votes: dict[str, list[dict[str, Any]]] = {}
    for answer_id in answer_ids:
        rows = sorted(
            feedback_repo.live_votes_on(session, answer_id=answer_id), key=lambda r: r.created_at
        )
        if rows:
            votes[answer_id] = [
                {
                    "rating": row.rating,
                    "reasons": list(row.reasons or []),
                    "comment": row.comment,
                    "correction": row.correction,
                    "rater": {"kind": row.rater_kind, "id": row.rater_id},
                    "created_at": row.created_at.isoformat(),
                }
                for row in rows
            ]
    return votes


def _suggestion(answer: Answer, feedback: list[dict[str, Any]]) -> SuggestionOut:
    trace = answer.trace or {}
    return SuggestionOut(
        answer_id=answer.id,
        text=answer.text,
        citations=[CitationOut.model_validate(c) for c in answer.citations],
        confidence=round(answer.confidence, 4),
        kind=answer.kind,
        handoff_reference=trace.get("handoff_reference"),
        feedback=feedback,
    )


def _summary(conversation: Conversation) -> AssistSummaryOut:
    stored = _stored(conversation)
    first = next((t["text"] for t in stored["transcript"] if t["speaker"] == "customer"), "")
    return AssistSummaryOut(
        conversation_id=conversation.id,
        created_at=conversation.created_at,
        updated_at=conversation.updated_at,
        turns=len(stored["transcript"]),
        preview=first[:120],
    )


def _passage_out(hit: SearchHit) -> PassageOut:
    return PassageOut(
        rank=hit.rank,
        chunk_id=hit.key,
        doc_id=hit.doc_id,
        version=hit.version,
        title=hit.title or hit.doc_id,
        section=[s for s in hit.section_path if s != hit.title],
        text=hit.text,
        score=round(hit.score, 6),
        url=hit_url(hit),
    )


__all__ = ["ALTERNATES", "PASSAGES", "recent_calls", "reopen_call", "suggest"]
