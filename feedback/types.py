"""Value types and protocols of the feedback loop, shared by capture, reranking and export."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Rating = Literal["up", "down"]
RaterKind = Literal["customer", "agent"]
ExportFormat = Literal["sft", "kto", "preference", "retrieval"]


@dataclass(frozen=True, slots=True)
class RetrievedPassage:
    """One passage the user saw (or that was retrieved), as recorded in the answer trace."""

    chunk_id: int
    doc_id: str
    version: int
    rank: int
    text: str
    cited: bool


@dataclass(frozen=True, slots=True)
class FeedbackRecord:
    """One live vote joined with the answer it rates: everything an export needs.

    Built by the capture side from SQL (feedback + answers + chunk texts) and consumed
    by the dataset builders, which never touch the database. Texts are raw here;
    redaction happens in the export step, before anything is written.
    """

    feedback_id: str
    answer_id: str
    conversation_id: str | None
    rating: Rating
    rater_kind: RaterKind
    rater_id: str
    reasons: tuple[str, ...]
    comment: str | None
    correction: str | None
    question: str
    rewritten_query: str
    answer_text: str
    history: tuple[tuple[str, str], ...]  # (role, text) turns before the question
    passages: tuple[RetrievedPassage, ...]
    channel: str
    product: str | None
    created_at: dt.datetime
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ExportFilters:
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    min_agreement: float | None = None
    rating: Rating | None = None
    channel: str | None = None
    product: str | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class ExportResult:
    """Files written by an export and the manifest that describes them."""

    format: ExportFormat
    files: Mapping[str, str]  # split name ("train", "validation") -> path
    manifest_path: str
    counts: Mapping[str, int]


class FeedbackSignal(Protocol):
    """Feedback-driven reranking: adjusts retrieval scores for a query."""

    @property
    def version(self) -> str: ...

    def adjust(self, query_vector: Any, hits: Sequence[Any]) -> list[Any]:
        """Return the hits re-ordered (and re-scored) using the feedback seen so far."""
        ...
