"""Builders for feedback tests: stored documents and answers that cite them."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from db.conversations import add_message, create_conversation, save_answer
from db.types import UpsertResult
from tests.db.helpers import upsert


def store_doc(
    sessions: sessionmaker[Session], doc_id: str, texts: list[str], product: str = "savings"
) -> UpsertResult:
    """Upsert a document (one chunk per text) and return what was stored."""
    with sessions.begin() as session:
        return upsert(session, doc_id, texts, metadata={"product": product})


def store_answer(
    sessions: sessionmaker[Session],
    question: str,
    cited: list[tuple[str, int, int]],
    *,
    channel: str = "web",
    history: tuple[str, ...] = (),
    text: str = "An answer [1].",
    retrieved: list[tuple[str, int, int]] | None = None,
) -> str:
    """Store a conversation (with earlier user turns) and an answer citing (doc, version,
    chunk key) passages; returns the answer id."""
    retrieved = retrieved if retrieved is not None else cited
    with sessions.begin() as session:
        conversation = create_conversation(session, channel=channel)
        for turn in history:
            add_message(session, conversation_id=conversation.id, role="user", text=turn)
            add_message(session, conversation_id=conversation.id, role="assistant", text="ok")
        add_message(session, conversation_id=conversation.id, role="user", text=question)
        trace: dict[str, Any] = {
            "route": "knowledge",
            "retrieved": [
                {"rank": r, "chunk_id": k, "doc_id": d, "version": v, "score": 1.0 / r}
                for r, (d, v, k) in enumerate(retrieved, start=1)
            ],
        }
        answer = save_answer(
            session,
            question=question,
            rewritten_query=question,
            text=text,
            kind="knowledge",
            channel=channel,
            generator="extractive",
            generator_version="1",
            conversation_id=conversation.id,
            citations=[
                {
                    "number": n,
                    "kind": "passage",
                    "title": d,
                    "doc_id": d,
                    "version": v,
                    "chunk_id": k,
                    "snippet": f"snippet of {d}",
                }
                for n, (d, v, k) in enumerate(cited, start=1)
            ],
            confidence=0.8,
            trace=trace,
        )
        add_message(
            session,
            conversation_id=conversation.id,
            role="assistant",
            text=text,
            answer_id=answer.id,
        )
        return answer.id
