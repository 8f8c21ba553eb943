"""Repository functions for conversations, their messages and the answers Teller gave.

Keyword-only functions that take a `Session` and never commit, like `db.repository`.
An answer is stored with its full trace (what it was built from, model versions,
timings) so that feedback on it can be turned into training data and audits can
replay why it was given.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Final

from sqlalchemy import Executable, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from db.base import utcnow
from db.errors import NotFoundError, translating
from db.models import Answer, Conversation, Message

CHANNELS: Final = frozenset({"web", "agent", "api", "cli"})
ROLES: Final = frozenset({"user", "assistant"})
ANSWER_KINDS: Final = frozenset({"knowledge", "rate", "clarification", "abstain"})


class ConversationNotFound(NotFoundError):
    """No conversation has the given id."""


def _check_length(name: str, value: str | None, limit: int) -> None:
    # SQLite does not enforce VARCHAR lengths; check here so both databases agree.
    if value is not None and len(value) > limit:
        raise ValueError(f"{name} is {len(value)} characters long; the limit is {limit}")


def _check_choice(name: str, value: str, allowed: frozenset[str]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} {value!r} is not one of {', '.join(sorted(allowed))}")


def new_id() -> str:
    """A new random id for a conversation or an answer (a UUID4 string)."""
    return str(uuid.uuid4())


def _new_row(
    channel: str, conversation_id: str | None, metadata: Mapping[str, Any] | None
) -> dict[str, Any]:
    _check_choice("channel", channel, CHANNELS)
    _check_length("conversation_id", conversation_id, 36)
    if conversation_id == "":
        raise ValueError("conversation_id must not be empty")
    now = utcnow()
    return {
        "id": conversation_id or new_id(),
        "channel": channel,
        "created_at": now,
        "updated_at": now,
        "meta": dict(metadata or {}),
    }


def create_conversation(
    session: Session,
    *,
    channel: str,
    conversation_id: str | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Conversation:
    """Start a conversation on `channel` (web, agent, api or cli).

    `conversation_id` lets a front end keep the id it already uses (36 characters at
    most); by default a UUID4 is generated. An id already taken raises `DatabaseError`.
    """
    conversation = Conversation(**_new_row(channel, conversation_id, metadata))
    with translating(f"creating conversation {conversation.id!r}"):
        session.add(conversation)
        session.flush()
    return conversation


def ensure_conversation(
    session: Session, *, conversation_id: str | None, channel: str, lock: bool = False
) -> Conversation:
    """The conversation `conversation_id`, started on `channel` when it is not stored yet
    (a new UUID4 one when the id is None); `lock` takes a row lock (``FOR UPDATE``).

    Safe when two requests open the same new id at once (a widget's double send, two
    console tabs): the insert skips an id already there (``ON CONFLICT DO NOTHING``) and
    both read the one row, where a plain insert failed one request and lost its message.
    """
    if conversation_id is None:
        return create_conversation(session, channel=channel)
    for_update = True if lock else None
    existing = session.get(Conversation, conversation_id, with_for_update=for_update)
    if existing is not None:
        return existing
    values = _new_row(channel, conversation_id, None)
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        statement: Executable = (
            postgresql.insert(Conversation).values(values).on_conflict_do_nothing()
        )
    elif dialect == "sqlite":
        statement = sqlite.insert(Conversation).values(values).on_conflict_do_nothing()
    else:
        return create_conversation(session, channel=channel, conversation_id=conversation_id)
    with translating(f"creating conversation {conversation_id!r}"):
        session.execute(statement)
        stored = session.get(
            Conversation, conversation_id, with_for_update=for_update, populate_existing=True
        )
    if stored is None:  # only if another transaction deleted it in between
        raise ConversationNotFound(f"conversation {conversation_id!r} vanished while opening it")
    return stored


def get_conversation(session: Session, *, conversation_id: str) -> Conversation | None:
    """The conversation with this id, or None."""
    with translating(f"reading conversation {conversation_id!r}"):
        return session.get(Conversation, conversation_id)


def add_message(
    session: Session,
    *,
    conversation_id: str,
    role: str,
    text: str,
    answer_id: str | None = None,
) -> Message:
    """Append a turn ("user" or "assistant") and touch the conversation's `updated_at`.

    Raises `ConversationNotFound` for an unknown conversation.
    """
    _check_choice("role", role, ROLES)
    with translating(f"adding a message to conversation {conversation_id!r}"):
        conversation = session.get(Conversation, conversation_id)
        if conversation is None:
            raise ConversationNotFound(f"no conversation with id {conversation_id!r}")
        now = utcnow()
        conversation.updated_at = now
        message = Message(
            conversation_id=conversation_id,
            role=role,
            text=text,
            answer_id=answer_id,
            created_at=now,
        )
        session.add(message)
        session.flush()
    return message


def recent_messages(session: Session, *, conversation_id: str, limit: int = 10) -> list[Message]:
    """The last `limit` messages of a conversation, oldest first."""
    if limit < 1:
        raise ValueError("limit must be at least 1")
    statement = (
        select(Message)
        .where(Message.conversation_id == conversation_id)
        .order_by(Message.id.desc())
        .limit(limit)
    )
    with translating(f"reading messages of conversation {conversation_id!r}"):
        rows = list(session.scalars(statement))
    rows.reverse()
    return rows


def save_answer(
    session: Session,
    *,
    question: str,
    text: str,
    kind: str,
    channel: str,
    generator: str,
    generator_version: str,
    conversation_id: str | None = None,
    answer_id: str | None = None,
    rewritten_query: str | None = None,
    citations: Sequence[Mapping[str, Any]] = (),
    confidence: float = 0.0,
    handoff_suggested: bool = False,
    abstained: bool = False,
    degraded: bool = False,
    trace: Mapping[str, Any] | None = None,
    reranker_version: str | None = None,
    timings_ms: Mapping[str, float] | None = None,
) -> Answer:
    """Store an answer with its trace; returns it (its `id` is the public `answer_id`).

    `kind` is "knowledge", "rate", "clarification" or "abstain"; `confidence` is in
    [0, 1]; `trace` and `citations` must be JSON-serialisable. Raises
    `ConversationNotFound` when `conversation_id` names no conversation.
    """
    _check_choice("kind", kind, ANSWER_KINDS)
    _check_choice("channel", channel, CHANNELS)
    if not 0.0 <= confidence <= 1.0:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}")
    _check_length("answer_id", answer_id, 36)
    _check_length("generator", generator, 200)
    _check_length("generator_version", generator_version, 200)
    _check_length("reranker_version", reranker_version, 200)
    with translating("storing an answer"):
        if conversation_id is not None and session.get(Conversation, conversation_id) is None:
            raise ConversationNotFound(f"no conversation with id {conversation_id!r}")
        answer = Answer(
            id=answer_id or new_id(),
            conversation_id=conversation_id,
            question=question,
            rewritten_query=rewritten_query,
            text=text,
            citations=[dict(c) for c in citations],
            confidence=float(confidence),
            handoff_suggested=handoff_suggested,
            abstained=abstained,
            degraded=degraded,
            kind=kind,
            trace=dict(trace or {}),
            generator=generator,
            generator_version=generator_version,
            reranker_version=reranker_version,
            timings_ms=dict(timings_ms or {}),
            channel=channel,
            created_at=utcnow(),
        )
        session.add(answer)
        session.flush()
    return answer


def get_answer(session: Session, *, answer_id: str) -> Answer | None:
    """The answer with this id, or None."""
    with translating(f"reading answer {answer_id!r}"):
        return session.get(Answer, answer_id)
