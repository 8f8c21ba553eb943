"""Capturing feedback: votes on answers, withdrawals, history, the review screen, export.

`FeedbackService.vote` is what `POST /v1/answers/{id}/feedback` calls. Each vote is
stored with what reranking and export need later: the answer's question embedding,
a snapshot of the passages the answer was built from, its channel and product, and
(for an agent's correction) the passage the correction was matched to. After the
commit the listeners run (the reranker refreshes), so the vote counts at once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import threading
from collections import Counter, OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from sqlalchemy.orm import Session, sessionmaker

from db import feedback as repo
from db.chunk_lookup import StoredPassage, chunk_texts
from db.conversations import get_answer
from db.models import Answer, Feedback, FeedbackEvent
from db.repository import embedding_to_bytes
from feedback.records import iter_records, passages_snapshot
from feedback.types import ExportFilters, ExportFormat, ExportResult, FeedbackRecord
from retrieval.parsing import has_control_characters
from retrieval.types import Embedder, SearchRequest

log = logging.getLogger(__name__)

MAX_REASONS = 10
MAX_REASON_LENGTH = 64
MAX_COMMENT_LENGTH = 4000
MAX_CORRECTION_LENGTH = 8000


@dataclass(frozen=True, slots=True)
class Vote:
    """One rater's opinion of one answer, as sent by the widget or the agent console."""

    rating: str
    rater_kind: str
    rater_id: str
    reasons: tuple[str, ...] = ()
    comment: str | None = None
    correction: str | None = None

    def fingerprint(self, answer_id: str) -> str:
        """SHA-256 of the request, to tell a retry from a new request under one key."""
        payload = {"answer_id": answer_id, **{k: getattr(self, k) for k in self.__slots__}}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class PassageMatch:
    """The stored passage an agent's correction was matched to."""

    chunk_id: int
    doc_id: str
    version: int
    text: str
    score: float


PassageMatcher = Callable[[str], PassageMatch | None]


def search_matcher(
    search: Callable[[SearchRequest], Any], *, min_similarity: float = 0.8
) -> PassageMatcher:
    """A `PassageMatcher` over a search function (`KnowledgeService.search`): the best
    dense hit for the correction's text, when its cosine is at least `min_similarity`
    (an agent pasted or closely paraphrased that passage)."""

    def match(text: str) -> PassageMatch | None:
        hits = search(SearchRequest(query=text[:2000], k=1, mode="dense")).hits
        if not hits or (hits[0].dense_score or 0.0) < min_similarity:
            return None
        hit = hits[0]
        return PassageMatch(hit.key, hit.doc_id, hit.version, hit.text, float(hit.dense_score))

    return match


@dataclass(frozen=True, slots=True)
class VoteView:
    """A live vote (or one event of its history) as the API shows it."""

    id: str
    answer_id: str
    rating: str | None
    rater_kind: str
    rater_id: str
    reasons: tuple[str, ...]
    comment: str | None
    correction: str | None
    channel: str | None = None
    product: str | None = None
    question: str | None = None
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None
    action: str | None = None
    status: str | None = None


def _view(row: Feedback, answer: Answer | None = None, status: str | None = None) -> VoteView:
    return VoteView(
        id=row.id,
        answer_id=row.answer_id,
        rating=row.rating,
        rater_kind=row.rater_kind,
        rater_id=row.rater_id,
        reasons=tuple(row.reasons or ()),
        comment=row.comment,
        correction=row.correction,
        channel=row.channel,
        product=row.product,
        question=answer.question if answer is not None else None,
        created_at=row.created_at,
        updated_at=row.updated_at,
        status=status,
    )


def _event_view(event: FeedbackEvent) -> VoteView:
    return VoteView(
        id=event.feedback_id,
        answer_id=event.answer_id,
        rating=event.rating,
        rater_kind=event.rater_kind,
        rater_id=event.rater_id,
        reasons=tuple(event.reasons or ()),
        comment=event.comment,
        correction=event.correction,
        created_at=event.created_at,
        action=event.action,
    )


def validate_vote(vote: Vote) -> None:
    """Raise `ValueError` naming the field when a vote breaks the rules."""
    if vote.rating not in repo.RATINGS:
        raise ValueError("rating must be 'up' or 'down'")
    if vote.rater_kind not in repo.RATER_KINDS:
        raise ValueError("rater.kind must be 'customer' or 'agent'")
    if not vote.rater_id.strip() or len(vote.rater_id) > 200:
        raise ValueError("rater.id must be 1-200 characters long")
    if has_control_characters(vote.rater_id):
        raise ValueError("rater.id must not contain control characters (such as NUL)")
    if len(vote.reasons) > MAX_REASONS or any(
        not r.strip() or len(r) > MAX_REASON_LENGTH for r in vote.reasons
    ):
        raise ValueError(f"reasons: at most {MAX_REASONS}, each 1-{MAX_REASON_LENGTH} characters")
    if vote.comment is not None and len(vote.comment) > MAX_COMMENT_LENGTH:
        raise ValueError(f"comment: at most {MAX_COMMENT_LENGTH} characters")
    if vote.correction is not None and len(vote.correction) > MAX_CORRECTION_LENGTH:
        raise ValueError(f"correction: at most {MAX_CORRECTION_LENGTH} characters")


def _product(answer: Answer, passages: dict[int, StoredPassage]) -> str | None:
    rate_query = (answer.trace or {}).get("rate_query") or {}
    if rate_query.get("product"):
        return str(rate_query["product"])
    for citation in answer.citations:
        stored = passages.get(citation.get("chunk_id") or -1)
        if stored is not None and stored.metadata.get("product"):
            return str(stored.metadata["product"])
    return None


class FeedbackService:
    """Stores votes and answers the review screen's questions (see the module doc)."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        embedder: Embedder | None = None,
        matcher: PassageMatcher | None = None,
        listeners: Sequence[Callable[[], None]] = (),
    ):
        self._sessions = sessions
        self._embedder = embedder
        self._matcher = matcher
        self._listeners = list(listeners)
        self._embedded: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def _embed(self, text: str) -> bytes:
        # Many votes rate answers to the same question: embed each text once.
        assert self._embedder is not None
        with self._lock:
            found = self._embedded.get(text)
            if found is not None:
                self._embedded.move_to_end(text)
                return found
        found = embedding_to_bytes(self._embedder.embed_query(text))
        with self._lock:
            self._embedded[text] = found
            if len(self._embedded) > 4096:
                self._embedded.popitem(last=False)
        return found

    def add_listener(self, listener: Callable[[], None]) -> None:
        """Call `listener()` after every committed change (for example `reranker.refresh`)."""
        self._listeners.append(listener)

    def _notify(self) -> None:
        for listener in self._listeners:
            try:
                listener()
            except Exception:  # the vote is stored; a reranker catches up on its next refresh
                log.exception("feedback listener failed")

    def _prepare(self, answer_id: str, vote: Vote, key: str | None) -> repo.NewVote:
        with self._sessions() as session:
            answer = get_answer(session, answer_id=answer_id)
            if answer is None:
                raise repo.AnswerNotFound(f"no answer with id {answer_id!r}")
            keys = [c.get("chunk_id") for c in answer.citations]
            keys += [r.get("chunk_id") for r in (answer.trace or {}).get("retrieved") or []]
            passages = chunk_texts(session, keys=[k for k in keys if k is not None])
            earlier = repo.live_votes_on(session, answer_id=answer_id)
        embedding, model = None, None
        if self._embedder is not None:
            model = self._embedder.name
            reuse = [v for v in earlier if v.embedding_model == model and v.question_embedding]
            embedding = (
                reuse[0].question_embedding
                if reuse
                else self._embed(answer.rewritten_query or answer.question)
            )
        source = None
        if vote.correction and self._matcher is not None:
            match = self._matcher(vote.correction)
            if match is not None:
                source = {
                    "chunk_id": match.chunk_id,
                    "doc_id": match.doc_id,
                    "version": match.version,
                    "text": match.text,
                    "score": round(match.score, 4),
                }
        return repo.NewVote(
            answer_id=answer_id,
            rater_kind=vote.rater_kind,
            rater_id=vote.rater_id,
            rating=vote.rating,
            reasons=vote.reasons,
            comment=vote.comment,
            correction=vote.correction,
            correction_source=source,
            passages=passages_snapshot(answer, passages),
            channel=answer.channel,
            product=_product(answer, passages),
            question_embedding=embedding,
            embedding_model=model,
            idempotency_key=key,
            request_hash=vote.fingerprint(answer_id),
        )

    def vote(self, answer_id: str, vote: Vote, *, idempotency_key: str | None = None) -> VoteView:
        """Record `vote`, replacing the rater's earlier vote on this answer.

        The returned view's `status` is "created", "replaced", "unchanged" (same vote
        again) or "replayed" (same `idempotency_key` again: nothing changed). Raises
        `AnswerNotFound`, `IdempotencyKeyReused` or `ValueError` (invalid vote).
        """
        validate_vote(vote)
        new = self._prepare(answer_id, vote, idempotency_key)
        with self._sessions.begin() as session:
            change = repo.record_vote(session, new)
            if change.vote is None:  # a replayed request whose vote was withdrawn since
                return VoteView(
                    "",
                    answer_id,
                    None,
                    vote.rater_kind,
                    vote.rater_id,
                    (),
                    None,
                    None,
                    status=change.status,
                )
            view = _view(change.vote, status=change.status)
        if change.status in {"created", "replaced"}:
            self._notify()
        return view

    def withdraw(
        self, answer_id: str, *, rater_kind: str, rater_id: str, idempotency_key: str | None = None
    ) -> bool:
        """Withdraw a rater's vote (kept in the history); False when there was none."""
        with self._sessions.begin() as session:
            removed = repo.withdraw_vote(
                session,
                answer_id=answer_id,
                rater_kind=rater_kind,
                rater_id=rater_id,
                idempotency_key=idempotency_key,
            )
        if removed:
            self._notify()
        return removed

    def history(self, answer_id: str) -> tuple[list[VoteView], list[VoteView]]:
        """The live votes on an answer and every event of their history, oldest first."""
        with self._sessions() as session:
            if get_answer(session, answer_id=answer_id) is None:
                raise repo.AnswerNotFound(f"no answer with id {answer_id!r}")
            live = [_view(v) for v in repo.live_votes_on(session, answer_id=answer_id)]
            events = [_event_view(e) for e in repo.vote_history(session, answer_id=answer_id)]
        return live, events

    def list_votes(
        self, filters: repo.FeedbackFilters, *, limit: int = 50, offset: int = 0
    ) -> tuple[list[VoteView], int]:
        """Live votes matching `filters`, newest first, and how many match in all."""
        with self._sessions() as session:
            rows, total = repo.list_votes(session, filters=filters, limit=limit, offset=offset)
            return [_view(row, answer) for row, answer in rows], total

    def stats(self, filters: repo.FeedbackFilters) -> dict[str, Any]:
        """Counts for the review screen: totals, approval rate, and up/down per rater
        kind, channel and product, and how often each reason was given."""
        with self._sessions() as session:
            facets = repo.vote_facets(session, filters=filters)
        ratings = Counter(f[0] for f in facets)
        groups: dict[str, dict[str, dict[str, int]]] = {
            "rater_kind": {},
            "channel": {},
            "product": {},
        }
        reasons: Counter[str] = Counter()
        for rating, channel, product, kind, given in facets:
            for name, value in (("rater_kind", kind), ("channel", channel), ("product", product)):
                bucket = groups[name].setdefault(value or "unknown", {"up": 0, "down": 0})
                bucket[rating] += 1
            reasons.update(given or ())
        total = len(facets)
        return {
            "total": total,
            "up": ratings["up"],
            "down": ratings["down"],
            "approval_rate": round(ratings["up"] / total, 4) if total else None,
            "by_rater_kind": groups["rater_kind"],
            "by_channel": groups["channel"],
            "by_product": groups["product"],
            "by_reason": dict(reasons.most_common()),
        }

    def records(self, filters: ExportFilters | None = None) -> list[FeedbackRecord]:
        """Live votes as `FeedbackRecord`s for the dataset builders.

        Only the vote-level filters (time window, channel, product) are applied here;
        rating, reason and agreement are decided per answer by the builders.
        """
        filters = filters or ExportFilters()
        db_filters = repo.FeedbackFilters(
            since=filters.since,
            until=filters.until,
            channel=filters.channel,
            product=filters.product,
        )
        with self._sessions() as session:
            return list(iter_records(session, filters=db_filters))

    def export(
        self,
        fmt: str,
        out: Path,
        filters: ExportFilters | None = None,
        *,
        validation_fraction: float = 0.1,
        seed: int = 13,
    ) -> ExportResult:
        """Write a redacted JSON Lines dataset, its split and manifest (`write_export`)."""
        from feedback.datasets import write_export

        filters = filters or ExportFilters()
        return write_export(
            self.records(filters),
            cast(ExportFormat, fmt),
            out,
            filters,
            validation_fraction=validation_fraction,
            seed=seed,
        )
