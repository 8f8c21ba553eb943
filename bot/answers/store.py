"""What the answer pipeline reads and writes in the database: a conversation's recent
turns (`open_conversation`), and the finished answer (`Draft`) stored with its question,
citations and full trace (`store_answer`)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from bot.answers.types import AnswerKind, AnswerResult, Citation
from bot.generation.types import Turn
from db import conversations as convo_repo


@dataclass(slots=True)
class Draft:
    """The answer being built, before it is stored."""

    kind: AnswerKind
    text: str
    citations: list[Citation]
    confidence: float
    handoff: bool
    trace: dict[str, Any]
    generator: str
    generator_version: str
    choices: list[str]


def open_conversation(
    sessions: sessionmaker[Session], conversation_id: str | None, channel: str
) -> tuple[str, list[Turn], dict[str, str]]:
    """The conversation's id, its last 10 messages as turns, oldest first, and the
    choices its last answer offered (`offered_choices`); a new conversation of
    `channel` when `conversation_id` is None or not stored yet."""
    with sessions.begin() as session:
        conversation = convo_repo.ensure_conversation(
            session, conversation_id=conversation_id or None, channel=channel
        )
        messages = convo_repo.recent_messages(session, conversation_id=conversation.id, limit=10)
        history = [Turn(role=m.role, text=m.text) for m in messages]  # type: ignore[arg-type]
        last = messages[-1] if messages else None
        offered: dict[str, str] = {}
        if last is not None and last.role == "assistant" and last.answer_id:
            answer = convo_repo.get_answer(session, answer_id=last.answer_id)
            offered = offered_choices(answer.trace if answer is not None else None)
        return conversation.id, history, offered


def offered_choices(trace: dict[str, Any] | None) -> dict[str, str]:
    """{label: the question it stands for} of the choices an answer offered.

    The widget and the console send a choice's label ("everyday savings") as the next
    message; the pipeline asks the question it stands for ("everyday savings rate"),
    which a label alone often is not. Answers stored before choices carried their
    questions offer none.
    """
    queries = (trace or {}).get("choice_queries")
    if not isinstance(queries, dict):
        return {}
    return {str(label): str(query) for label, query in queries.items()}


def store_answer(
    sessions: sessionmaker[Session],
    *,
    conversation_id: str,
    channel: str,
    question: str,
    rewritten: str,
    draft: Draft,
    timings: dict[str, float],
    degraded: bool,
) -> AnswerResult:
    """Store the question, the answer with its citations and full trace, and the reply,
    in one transaction; return the answer as the pipeline gives it (with a handoff
    reference `HO-...` when the draft suggests a handoff)."""
    answer_id = str(uuid.uuid4())
    reference = f"HO-{answer_id[:8].upper()}" if draft.handoff else None
    with sessions.begin() as session:
        convo_repo.add_message(session, conversation_id=conversation_id, role="user", text=question)
        convo_repo.save_answer(
            session,
            answer_id=answer_id,
            conversation_id=conversation_id,
            question=question,
            rewritten_query=rewritten,
            text=draft.text,
            citations=[c.as_dict() for c in draft.citations],
            confidence=draft.confidence,
            handoff_suggested=draft.handoff,
            abstained=draft.kind == "abstain",
            degraded=degraded,
            kind=draft.kind,
            trace={**draft.trace, "handoff_reference": reference, "choices": draft.choices},
            generator=draft.generator,
            generator_version=draft.generator_version,
            reranker_version=draft.trace.get("reranker_version"),
            timings_ms={k: round(v, 3) for k, v in timings.items()},
            channel=channel,
        )
        convo_repo.add_message(
            session,
            conversation_id=conversation_id,
            role="assistant",
            text=draft.text,
            answer_id=answer_id,
        )
    return AnswerResult(
        conversation_id=conversation_id,
        answer_id=answer_id,
        text=draft.text,
        citations=draft.citations,
        confidence=round(draft.confidence, 4),
        handoff_suggested=draft.handoff,
        degraded=degraded,
        kind=draft.kind,
        choices=draft.choices,
        handoff_reference=reference,
    )
