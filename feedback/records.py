"""SQL rows -> feedback domain records: export records, reranker votes, training votes.

Everything here reads what was stored with the vote (the passages snapshot, the
answer's citations and trace), never today's documents, so a record built long after
the knowledge base changed still describes what the user saw.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import select
from sqlalchemy.orm import Session

from db import feedback as repo
from db.chunk_lookup import StoredPassage
from db.errors import translating
from db.models import Answer, Feedback, Message
from feedback.types import FeedbackRecord, RaterKind, Rating, RetrievedPassage

# (doc id, version, +1 helped / -1 failed, weight)
Attribution = tuple[str, int, int, float]
FIRST_CITATION_WEIGHT = 1.0
OTHER_CITATION_WEIGHT = 0.5
HISTORY_TURNS = 10


@dataclass(frozen=True, slots=True)
class MemoryVote:
    """A live vote as the reranker keeps it: who voted, and on which documents."""

    key: tuple[str, str, str]  # (answer id, rater kind, rater id)
    rater: str  # "kind:id"
    rater_kind: str
    attributions: tuple[Attribution, ...]


@dataclass(frozen=True, slots=True)
class TrainingVote:
    """A vote as adapter training sees it: the query and the chunks it says answer it."""

    answer_id: str
    conversation_id: str | None
    rater: str
    rater_kind: str
    query: str
    vector: bytes | None
    embedding_model: str | None
    positives: tuple[tuple[int, float], ...]  # (chunk key, weight)


def _passage_citations(citations: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [c for c in citations if c.get("kind", "passage") == "passage" and c.get("doc_id")]


def vote_attributions(
    rating: str,
    citations: Sequence[Mapping[str, Any]],
    correction_source: Mapping[str, Any] | None,
) -> tuple[Attribution, ...]:
    """Which (doc id, version) a vote judged, in which direction and how strongly.

    An up vote credits the cited documents (the first citation with weight 1, the
    others 0.5: the user cannot say which one helped). A down vote blames every cited
    document (weight 1). A correction an agent matched to a passage credits that
    passage's document (weight 1), which is then never blamed by the same vote.
    Uncited retrieved passages are not judged: the user did not see them as sources.
    """
    found: dict[tuple[str, int], tuple[int, float]] = {}
    fixed = None
    if correction_source and correction_source.get("doc_id"):
        fixed = (str(correction_source["doc_id"]), int(correction_source["version"]))
        found[fixed] = (1, 1.0)
    sign = 1 if rating == "up" else -1
    for position, citation in enumerate(_passage_citations(citations)):
        doc = (str(citation["doc_id"]), int(citation.get("version") or 0))
        if doc == fixed:
            continue
        weight = FIRST_CITATION_WEIGHT if position == 0 or sign < 0 else OTHER_CITATION_WEIGHT
        if doc not in found or found[doc][1] < weight:
            found[doc] = (sign, weight)
    return tuple((d, v, s, w) for (d, v), (s, w) in found.items())


def memory_vote(row: Feedback, answer: Answer) -> MemoryVote:
    """The reranker's view of a stored vote."""
    return MemoryVote(
        key=(row.answer_id, row.rater_kind, row.rater_id),
        rater=f"{row.rater_kind}:{row.rater_id}",
        rater_kind=row.rater_kind,
        attributions=vote_attributions(row.rating, answer.citations, row.correction_source),
    )


def training_vote(row: Feedback, answer: Answer) -> TrainingVote | None:
    """The chunks a vote says answer its query (cited chunks of an approved answer, the
    passage matched to a correction); None when it names none."""
    positives: dict[int, float] = {}
    source = row.correction_source or {}
    if source.get("chunk_id") is not None:
        positives[int(source["chunk_id"])] = 1.0
    elif row.rating == "up":
        for position, citation in enumerate(_passage_citations(answer.citations)):
            if citation.get("chunk_id") is not None:
                weight = FIRST_CITATION_WEIGHT if position == 0 else OTHER_CITATION_WEIGHT
                positives.setdefault(int(citation["chunk_id"]), weight)
    if not positives:
        return None
    return TrainingVote(
        answer_id=row.answer_id,
        conversation_id=answer.conversation_id,
        rater=f"{row.rater_kind}:{row.rater_id}",
        rater_kind=row.rater_kind,
        query=answer.rewritten_query or answer.question,
        vector=row.question_embedding,
        embedding_model=row.embedding_model,
        positives=tuple(positives.items()),
    )


def passages_snapshot(answer: Answer, texts: Mapping[int, StoredPassage]) -> list[dict[str, Any]]:
    """The passages of an answer's trace with their texts, for the `passages` column.

    `texts` maps chunk keys to the chunks as stored now; a chunk whose document changed
    since the answer falls back to the citation's snippet (or "").
    """
    cited = {c.get("chunk_id"): c for c in _passage_citations(answer.citations)}
    retrieved = list((answer.trace or {}).get("retrieved") or [])
    seen = {r.get("chunk_id") for r in retrieved}
    for citation in cited.values():  # a cited passage missing from the trace still counts
        if citation.get("chunk_id") not in seen:
            retrieved.append({**citation, "rank": len(retrieved) + 1})
    snapshot = []
    for item in retrieved:
        key = item.get("chunk_id")
        stored = texts.get(int(key)) if key is not None else None
        same = stored is not None and (stored.doc_id, stored.version) == (
            item.get("doc_id"),
            item.get("version"),
        )
        text = stored.text if same and stored else str(cited.get(key, {}).get("snippet", ""))
        snapshot.append(
            {
                "chunk_id": key,
                "doc_id": item.get("doc_id"),
                "version": item.get("version"),
                "rank": item.get("rank"),
                "text": text,
                "cited": key in cited,
            }
        )
    return snapshot


def _history(messages: Sequence[Message], answer_id: str) -> tuple[tuple[str, str], ...]:
    for index, message in enumerate(messages):
        if message.answer_id == answer_id:
            earlier = list(messages[:index])
            if earlier and earlier[-1].role == "user":
                earlier.pop()  # the question itself
            return tuple((m.role, m.text) for m in earlier[-HISTORY_TURNS:])
    return ()


def to_record(
    row: Feedback, answer: Answer, history: tuple[tuple[str, str], ...] = ()
) -> FeedbackRecord:
    """One live vote joined with its answer, as the dataset builders consume it."""
    source = dict(row.correction_source or {})
    metadata: dict[str, Any] = {
        "answer_kind": answer.kind,
        "generator": answer.generator,
        "generator_version": answer.generator_version,
        "reranker_version": answer.reranker_version,
        "confidence": answer.confidence,
        "trace_route": (answer.trace or {}).get("route"),
    }
    if source.get("text"):
        metadata["correction_passage"] = source["text"]
    if source.get("chunk_id") is not None:
        metadata["correction_chunk_id"] = int(source["chunk_id"])
    passages = tuple(
        RetrievedPassage(
            chunk_id=int(p["chunk_id"]) if p.get("chunk_id") is not None else -1,
            doc_id=str(p.get("doc_id") or ""),
            version=int(p.get("version") or 0),
            rank=int(p.get("rank") or 0),
            text=str(p.get("text") or ""),
            cited=bool(p.get("cited")),
        )
        for p in row.passages or ()
    )
    return FeedbackRecord(
        feedback_id=row.id,
        answer_id=row.answer_id,
        conversation_id=answer.conversation_id,
        rating=cast(Rating, row.rating),
        rater_kind=cast(RaterKind, row.rater_kind),
        rater_id=row.rater_id,
        reasons=tuple(row.reasons or ()),
        comment=row.comment,
        correction=row.correction,
        question=answer.question,
        rewritten_query=answer.rewritten_query or answer.question,
        answer_text=answer.text,
        history=history,
        passages=passages,
        channel=row.channel,
        product=row.product,
        created_at=row.updated_at,
        metadata=metadata,
    )


def iter_records(
    session: Session, *, filters: repo.FeedbackFilters | None = None
) -> Iterator[FeedbackRecord]:
    """Every live vote matching `filters` as a `FeedbackRecord`, oldest vote first."""
    for batch in repo.iter_votes(session, filters=filters or repo.FeedbackFilters()):
        conversations = {a.conversation_id for _, a in batch if a.conversation_id}
        messages: dict[str, list[Message]] = {}
        if conversations:
            statement = (
                select(Message)
                .where(Message.conversation_id.in_(sorted(conversations)))
                .order_by(Message.id)
            )
            with translating("reading conversation history"):
                for message in session.scalars(statement):
                    messages.setdefault(message.conversation_id, []).append(message)
        for row, answer in batch:
            turns = messages.get(answer.conversation_id or "", [])
            yield to_record(row, answer, _history(turns, answer.id))


def training_votes(session: Session) -> list[TrainingVote]:
    """Every live vote that names passages answering its query (for adapter training)."""
    votes = []
    for row, answer in repo.load_votes(session):
        vote = training_vote(row, answer)
        if vote is not None:
            votes.append(vote)
    return votes
