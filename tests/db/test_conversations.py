"""Conversations, messages and stored answers on real SQLite and PostgreSQL."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import delete, func, select
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session, sessionmaker

from db.conversations import (
    ConversationNotFound,
    add_message,
    create_conversation,
    get_answer,
    get_conversation,
    recent_messages,
    save_answer,
)
from db.errors import DatabaseError
from db.models import Conversation, Message

Factory = sessionmaker[Session]

TRACE = {
    "route": "knowledge",
    "hits": [{"chunk_id": 7, "doc_id": "wires", "version": 2, "score": 0.83, "rank": 1}],
    "rate_rows": [],
    "filters": {"product": None, "valid_on": "2026-11-23"},
    "grounding": {"ok": True, "unsupported": []},
}


def _answer(session: Session, conversation_id: str | None, **overrides: object) -> str:
    values: dict[str, object] = {
        "conversation_id": conversation_id,
        "question": "what does a wire cost?",
        "rewritten_query": "international wire fee",
        "text": "International wires cost $45 [1].",
        "kind": "knowledge",
        "channel": "web",
        "citations": [{"number": 1, "doc_id": "wires", "version": 2}],
        "confidence": 0.82,
        "trace": TRACE,
        "generator": "extractive",
        "generator_version": "1",
        "reranker_version": "feedback-v1",
        "timings_ms": {"retrieve": 12.5, "generate": 3.0},
    }
    values.update(overrides)
    return save_answer(session, **values).id  # type: ignore[arg-type]


def test_conversation_round_trip(session_factory: Factory) -> None:
    with session_factory.begin() as session:
        conversation = create_conversation(session, channel="web", metadata={"locale": "en-US"})
        cid = conversation.id
    assert uuid.UUID(cid).version == 4
    with session_factory() as session:
        loaded = get_conversation(session, conversation_id=cid)
        assert loaded is not None
        assert (loaded.channel, loaded.meta) == ("web", {"locale": "en-US"})
        assert loaded.created_at.tzinfo is not None
        assert get_conversation(session, conversation_id="missing") is None


def test_caller_chosen_id_and_duplicates(session_factory: Factory) -> None:
    with session_factory.begin() as session:
        create_conversation(session, channel="agent", conversation_id="call-42")
    with pytest.raises(DatabaseError), session_factory.begin() as session:
        create_conversation(session, channel="agent", conversation_id="call-42")
    with pytest.raises(ValueError, match="channel 'sms'"), session_factory.begin() as session:
        create_conversation(session, channel="sms")
    with pytest.raises(ValueError, match="limit is 36"), session_factory.begin() as session:
        create_conversation(session, channel="api", conversation_id="x" * 37)


def test_messages_in_order_and_recent_window(session_factory: Factory) -> None:
    with session_factory.begin() as session:
        cid = create_conversation(session, channel="cli").id
        created = session.get(Conversation, cid)
        assert created is not None
        first_update = created.updated_at
        for n in range(12):
            add_message(
                session,
                conversation_id=cid,
                role="user" if n % 2 == 0 else "assistant",
                text=f"turn {n}",
            )
    with session_factory() as session:
        window = recent_messages(session, conversation_id=cid, limit=4)
        assert [m.text for m in window] == ["turn 8", "turn 9", "turn 10", "turn 11"]
        assert [m.role for m in window] == ["user", "assistant", "user", "assistant"]
        assert len(recent_messages(session, conversation_id=cid)) == 10
        assert recent_messages(session, conversation_id="other") == []
        conversation = get_conversation(session, conversation_id=cid)
        assert conversation is not None and conversation.updated_at >= first_update


def test_message_validation(session_factory: Factory) -> None:
    with pytest.raises(ConversationNotFound), session_factory.begin() as session:
        add_message(session, conversation_id="nope", role="user", text="hi")
    with session_factory.begin() as session:
        cid = create_conversation(session, channel="web").id
    with pytest.raises(ValueError, match="role 'system'"), session_factory.begin() as session:
        add_message(session, conversation_id=cid, role="system", text="hi")
    with pytest.raises(ValueError, match="at least 1"), session_factory() as session:
        recent_messages(session, conversation_id=cid, limit=0)


def test_answer_round_trip_with_trace(session_factory: Factory) -> None:
    with session_factory.begin() as session:
        cid = create_conversation(session, channel="web").id
        add_message(session, conversation_id=cid, role="user", text="what does a wire cost?")
        answer_id = _answer(session, cid)
        add_message(
            session,
            conversation_id=cid,
            role="assistant",
            text="International wires cost $45 [1].",
            answer_id=answer_id,
        )
    with session_factory() as session:
        answer = get_answer(session, answer_id=answer_id)
        assert answer is not None
        assert (answer.kind, answer.channel, answer.conversation_id) == ("knowledge", "web", cid)
        assert answer.trace == TRACE
        assert answer.citations == [{"number": 1, "doc_id": "wires", "version": 2}]
        assert answer.timings_ms == {"retrieve": 12.5, "generate": 3.0}
        assert answer.confidence == pytest.approx(0.82)
        assert (answer.handoff_suggested, answer.abstained, answer.degraded) == (
            False,
            False,
            False,
        )
        assert (answer.generator, answer.generator_version, answer.reranker_version) == (
            "extractive",
            "1",
            "feedback-v1",
        )
        assert answer.rewritten_query == "international wire fee"
        assert answer.created_at.tzinfo is not None
        last = recent_messages(session, conversation_id=cid, limit=1)[0]
        assert last.answer_id == answer_id
        assert get_answer(session, answer_id="missing") is None


def test_answer_flags_kinds_and_validation(session_factory: Factory) -> None:
    with session_factory.begin() as session:
        answer_id = _answer(
            session,
            None,
            kind="abstain",
            channel="api",
            abstained=True,
            handoff_suggested=True,
            degraded=True,
            confidence=0.0,
            reranker_version=None,
            rewritten_query=None,
            answer_id="a" * 36,
        )
    assert answer_id == "a" * 36
    with session_factory() as session:
        answer = get_answer(session, answer_id=answer_id)
        assert answer is not None
        assert (answer.abstained, answer.handoff_suggested, answer.degraded) == (True, True, True)
        assert answer.conversation_id is None and answer.reranker_version is None
    invalid: list[tuple[dict[str, object], str]] = [
        ({"kind": "chitchat"}, "kind 'chitchat'"),
        ({"channel": "fax"}, "channel 'fax'"),
        ({"confidence": 1.5}, "between 0 and 1"),
        ({"generator": "g" * 201}, "limit is 200"),
    ]
    for overrides, message in invalid:
        with pytest.raises(ValueError, match=message), session_factory.begin() as session:
            _answer(session, None, **overrides)
    with pytest.raises(ConversationNotFound), session_factory.begin() as session:
        _answer(session, "no-such-conversation")


def test_deleting_a_conversation_cascades_to_messages_not_answers(
    session_factory: Factory,
) -> None:
    with session_factory.begin() as session:
        quiet = create_conversation(session, channel="web").id
        add_message(session, conversation_id=quiet, role="user", text="hello")
        answered = create_conversation(session, channel="web").id
        _answer(session, answered)
    with session_factory.begin() as session:
        session.execute(delete(Conversation).where(Conversation.id == quiet))
    with session_factory() as session:
        count = select(func.count()).select_from(Message).where(Message.conversation_id == quiet)
        assert session.scalar(count) == 0
    # Answers are audit records: a conversation that has them cannot be hard-deleted.
    with (
        pytest.raises(sa_exc.IntegrityError, match=r"(?i)foreign key"),
        session_factory.begin() as session,
    ):
        session.execute(delete(Conversation).where(Conversation.id == answered))
