"""Value types of the answer pipeline."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

AnswerKind = Literal["knowledge", "rate", "clarification", "abstain", "dialogue"]


@dataclass(frozen=True, slots=True)
class Citation:
    """A source the answer cites: a knowledge-base passage or a rate-sheet row."""

    number: int
    kind: Literal["passage", "rate"]
    title: str
    doc_id: str | None = None
    version: int | None = None
    chunk_id: int | None = None
    section: tuple[str, ...] = ()
    url: str | None = None
    rate_row_id: int | None = None
    snippet: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "kind": self.kind,
            "title": self.title,
            "doc_id": self.doc_id,
            "version": self.version,
            "chunk_id": self.chunk_id,
            "section": list(self.section),
            "url": self.url,
            "rate_row_id": self.rate_row_id,
            "snippet": self.snippet,
        }


@dataclass(frozen=True, slots=True)
class AnswerResult:
    """What `/v1/chat` returns (and the final SSE event carries)."""

    conversation_id: str
    answer_id: str
    text: str
    citations: list[Citation]
    confidence: float
    handoff_suggested: bool
    degraded: bool
    kind: AnswerKind
    choices: list[str] = field(default_factory=list)
    handoff_reference: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "conversation_id": self.conversation_id,
            "answer_id": self.answer_id,
            "text": self.text,
            "citations": [c.as_dict() for c in self.citations],
            "confidence": self.confidence,
            "handoff_suggested": self.handoff_suggested,
            "degraded": self.degraded,
            "kind": self.kind,
            "choices": list(self.choices),
            "handoff_reference": self.handoff_reference,
        }


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """One SSE event: `token` deltas, then one `final` with the full `AnswerResult`."""

    event: Literal["token", "final", "error"]
    data: dict[str, Any]
