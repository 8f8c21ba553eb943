"""Repository functions for feedback votes and their history.

Keyword-only functions that take a `Session` and never commit, like `db.repository`.
One live vote per (answer, rater): `record_vote` inserts or replaces it and appends an
event; `withdraw_vote` deletes it and appends an event. Events are never changed, so
the history of every vote survives replacement and withdrawal. Review lists, facets
and exports read votes through `FeedbackFilters`; `last_event_id`, `changed_since` and
`load_votes` let rerankers keep the live votes in memory.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeVar

from sqlalchemy import Select, exists, func, select, type_coerce
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session, defer, load_only

from db.base import utcnow
from db.errors import DatabaseError, NotFoundError, translating
from db.models import Answer, Feedback, FeedbackEvent

RATINGS: Final = frozenset({"up", "down"})
RATER_KINDS: Final = frozenset({"customer", "agent"})
VoteStatus = Literal["created", "replaced", "unchanged", "replayed"]
SelectT = TypeVar("SelectT", bound=Select)


class AnswerNotFound(NotFoundError):
    """No answer has the given id."""


class IdempotencyKeyReused(DatabaseError):
    """An idempotency key was sent again with a different request."""


@dataclass(frozen=True, slots=True)
class NewVote:
    """A vote to store; `request_hash` fingerprints the request for idempotency checks."""

    answer_id: str
    rater_kind: str
    rater_id: str
    rating: str
    reasons: tuple[str, ...] = ()
    comment: str | None = None
    correction: str | None = None
    correction_source: Mapping[str, Any] | None = None
    passages: Sequence[Mapping[str, Any]] = ()
    channel: str = "api"
    product: str | None = None
    question_embedding: bytes | None = None
    embedding_model: str | None = None
    idempotency_key: str | None = None
    request_hash: str | None = None


@dataclass(frozen=True, slots=True)
class VoteChange:
    """What `record_vote` did, and the live vote afterwards (None if since withdrawn)."""

    status: VoteStatus
    vote: Feedback | None
    event_id: int | None


@dataclass(frozen=True, slots=True)
class FeedbackFilters:
    """Filters of the review screen; every bound is optional. `until` is exclusive."""

    since: dt.datetime | None = None
    until: dt.datetime | None = None
    rating: str | None = None
    channel: str | None = None
    product: str | None = None
    reason: str | None = None
    rater_kind: str | None = None


def _check(
    name: str, value: str | None, *, limit: int, allowed: frozenset[str] = frozenset()
) -> None:
    if value is None:
        return
    if allowed and value not in allowed:
        raise ValueError(f"{name} {value!r} is not one of {', '.join(sorted(allowed))}")
    if len(value) > limit:
        raise ValueError(f"{name} is {len(value)} characters long; the limit is {limit}")


def _validate(vote: NewVote) -> None:
    _check("rating", vote.rating, limit=8, allowed=RATINGS)
    _check("rater_kind", vote.rater_kind, limit=16, allowed=RATER_KINDS)
    _check("rater_id", vote.rater_id, limit=200)
    _check("idempotency_key", vote.idempotency_key, limit=200)
    _check("product", vote.product, limit=200)
    _check("embedding_model", vote.embedding_model, limit=512)
    if not vote.rater_id:
        raise ValueError("rater_id must not be empty")


INSERT_ATTEMPTS = 5
"""First-vote inserts one request tries while concurrent votes and withdrawals of the
same rater keep adding and deleting the row (each lost race is a unique violation)."""


def _same_content(row: Feedback, vote: NewVote) -> bool:
    return (
        row.rating == vote.rating
        and tuple(row.reasons or ()) == tuple(vote.reasons)
        and row.comment == vote.comment
        and row.correction == vote.correction
    )


def _lock_vote(session: Session, answer_id: str, kind: str, rater_id: str) -> Feedback | None:
    statement = (
        select(Feedback)
        .where(
            Feedback.answer_id == answer_id,
            Feedback.rater_kind == kind,
            Feedback.rater_id == rater_id,
        )
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return session.scalars(statement).one_or_none()


def _event(session: Session, row: Feedback, action: str, vote: NewVote | None) -> FeedbackEvent:
    event = FeedbackEvent(
        feedback_id=row.id,
        answer_id=row.answer_id,
        rater_kind=row.rater_kind,
        rater_id=row.rater_id,
        action=action,
        rating=None if action == "withdrawn" else row.rating,
        reasons=[] if action == "withdrawn" else list(row.reasons),
        comment=None if action == "withdrawn" else row.comment,
        correction=None if action == "withdrawn" else row.correction,
        idempotency_key=vote.idempotency_key if vote is not None else None,
        request_hash=vote.request_hash if vote is not None else None,
        created_at=utcnow(),
    )
    session.add(event)
    session.flush()
    return event


def _replayed(
    session: Session, kind: str, rater_id: str, key: str | None, request_hash: str | None
) -> FeedbackEvent | None:
    if key is None:
        return None
    event = session.scalars(
        select(FeedbackEvent).where(
            FeedbackEvent.rater_kind == kind,
            FeedbackEvent.rater_id == rater_id,
            FeedbackEvent.idempotency_key == key,
        )
    ).one_or_none()
    if event is not None and event.request_hash != request_hash:
        raise IdempotencyKeyReused(
            f"the Idempotency-Key {key!r} was already used for a different request; "
            "send a new key for a new vote"
        )
    return event


def _apply(session: Session, row: Feedback, vote: NewVote) -> None:
    row.rating = vote.rating
    row.reasons = list(vote.reasons)
    row.comment = vote.comment
    row.correction = vote.correction
    row.correction_source = dict(vote.correction_source) if vote.correction_source else None
    row.passages = [dict(p) for p in vote.passages]
    row.channel = vote.channel
    row.product = vote.product
    if vote.question_embedding is not None:
        row.question_embedding = vote.question_embedding
        row.embedding_model = vote.embedding_model
    row.updated_at = utcnow()


def record_vote(session: Session, vote: NewVote) -> VoteChange:
    """Store a rater's vote on an answer, replacing their earlier one.

    - same idempotency key as an earlier request of this rater: "replayed", nothing is
      written (a different request under that key raises `IdempotencyKeyReused`);
    - live vote with the same rating, reasons, comment and correction: "unchanged";
    - live vote that differs: "replaced" (the old values stay in the history);
    - no live vote: "created".

    Raises `AnswerNotFound` for an unknown answer. Concurrent first votes of one rater
    on PostgreSQL: the loser is handled as a replacement (or inserted again when a
    concurrent withdrawal removed the winner); SQLite runs writers one at a time.
    """
    _validate(vote)
    with translating(f"storing a vote on answer {vote.answer_id!r}"):
        event = _replayed(
            session, vote.rater_kind, vote.rater_id, vote.idempotency_key, vote.request_hash
        )
        if event is not None:
            current = _lock_vote(session, vote.answer_id, vote.rater_kind, vote.rater_id)
            return VoteChange("replayed", current, event.id)
        if session.get(Answer, vote.answer_id) is None:
            raise AnswerNotFound(f"no answer with id {vote.answer_id!r}")
        row = _lock_vote(session, vote.answer_id, vote.rater_kind, vote.rater_id)
        attempts = 0
        while row is None:
            row = Feedback(
                id=str(uuid.uuid4()),
                answer_id=vote.answer_id,
                rater_kind=vote.rater_kind,
                rater_id=vote.rater_id,
                created_at=utcnow(),
            )
            _apply(session, row, vote)
            try:
                with session.begin_nested():  # a concurrent first vote must not abort us
                    session.add(row)
            except sa_exc.IntegrityError:
                # Another request of this rater inserted the vote first: replace it. If
                # a withdrawal deleted it again meanwhile, there is none: insert again.
                attempts += 1
                if attempts == INSERT_ATTEMPTS:
                    raise
                row = _lock_vote(session, vote.answer_id, vote.rater_kind, vote.rater_id)
            else:
                return VoteChange("created", row, _event(session, row, "created", vote).id)
        if _same_content(row, vote):
            return VoteChange("unchanged", row, None)
        _apply(session, row, vote)
        return VoteChange("replaced", row, _event(session, row, "replaced", vote).id)


def withdraw_vote(
    session: Session,
    *,
    answer_id: str,
    rater_kind: str,
    rater_id: str,
    idempotency_key: str | None = None,
) -> bool:
    """Delete a rater's live vote on an answer (kept in the history); False when none.

    Raises `AnswerNotFound` for an unknown answer.
    """
    _check("rater_kind", rater_kind, limit=16, allowed=RATER_KINDS)
    with translating(f"withdrawing a vote on answer {answer_id!r}"):
        if session.get(Answer, answer_id) is None:
            raise AnswerNotFound(f"no answer with id {answer_id!r}")
        row = _lock_vote(session, answer_id, rater_kind, rater_id)
        if row is None:
            return False
        marker = NewVote(
            answer_id, rater_kind, rater_id, row.rating, idempotency_key=idempotency_key
        )
        _event(session, row, "withdrawn", marker if idempotency_key else None)
        session.delete(row)
        session.flush()
        return True


def _reason_filter(session: Session, reason: str) -> Any:
    if session.get_bind().dialect.name == "postgresql":
        return type_coerce(Feedback.reasons, JSONB).contains([reason])
    each = func.json_each(Feedback.reasons).table_valued("value")
    return exists(select(1).select_from(each).where(each.c.value == reason))


def _filtered(session: Session, statement: SelectT, filters: FeedbackFilters) -> SelectT:
    if filters.since is not None:
        statement = statement.where(Feedback.updated_at >= filters.since)
    if filters.until is not None:
        statement = statement.where(Feedback.updated_at < filters.until)
    if filters.rating is not None:
        statement = statement.where(Feedback.rating == filters.rating)
    if filters.channel is not None:
        statement = statement.where(Feedback.channel == filters.channel)
    if filters.product is not None:
        statement = statement.where(func.lower(Feedback.product) == filters.product.lower())
    if filters.rater_kind is not None:
        statement = statement.where(Feedback.rater_kind == filters.rater_kind)
    if filters.reason is not None:
        statement = statement.where(_reason_filter(session, filters.reason))
    return statement


def list_votes(
    session: Session, *, filters: FeedbackFilters, limit: int = 50, offset: int = 0
) -> tuple[list[tuple[Feedback, Answer]], int]:
    """Live votes matching `filters`, newest first, with their answers; and the total."""
    if limit < 0 or offset < 0:
        raise ValueError("limit and offset must not be negative")
    base = _filtered(session, select(Feedback, Answer).join(Answer), filters)
    counted = _filtered(session, select(func.count()).select_from(Feedback), filters)
    with translating("listing feedback"):
        total = session.scalar(counted) or 0
        rows = session.execute(
            base.order_by(Feedback.updated_at.desc(), Feedback.id).limit(limit).offset(offset)
        ).all()
    return [(row[0], row[1]) for row in rows], total


def iter_votes(
    session: Session, *, filters: FeedbackFilters, batch_size: int = 500
) -> Iterable[list[tuple[Feedback, Answer]]]:
    """Every live vote matching `filters` with its answer, oldest first, in batches."""
    offset = 0
    while True:
        statement = _filtered(session, select(Feedback, Answer).join(Answer), filters)
        statement = statement.order_by(Feedback.updated_at, Feedback.id)
        with translating("reading feedback"):
            rows = session.execute(statement.limit(batch_size).offset(offset)).all()
        if not rows:
            return
        yield [(row[0], row[1]) for row in rows]
        offset += len(rows)


def vote_facets(session: Session, *, filters: FeedbackFilters) -> list[tuple[Any, ...]]:
    """`(rating, channel, product, rater_kind, reasons)` of every matching live vote."""
    statement = select(
        Feedback.rating, Feedback.channel, Feedback.product, Feedback.rater_kind, Feedback.reasons
    )
    with translating("computing feedback statistics"):
        return [tuple(row) for row in session.execute(_filtered(session, statement, filters))]


def vote_history(session: Session, *, answer_id: str) -> list[FeedbackEvent]:
    """Every event of every vote on an answer, oldest first."""
    statement = (
        select(FeedbackEvent).where(FeedbackEvent.answer_id == answer_id).order_by(FeedbackEvent.id)
    )
    with translating(f"reading the feedback history of answer {answer_id!r}"):
        return list(session.scalars(statement))


def live_votes_on(session: Session, *, answer_id: str) -> list[Feedback]:
    """The live votes on one answer, oldest first."""
    statement = (
        select(Feedback)
        .where(Feedback.answer_id == answer_id)
        .order_by(Feedback.created_at, Feedback.id)
    )
    with translating(f"reading the votes on answer {answer_id!r}"):
        return list(session.scalars(statement))


def last_event_id(session: Session) -> int:
    """The id of the newest feedback event (0 when there is none)."""
    with translating("reading the last feedback event"):
        return session.scalar(select(func.max(FeedbackEvent.id))) or 0


def changed_since(session: Session, *, after_event: int) -> tuple[int, set[tuple[str, str, str]]]:
    """The newest event id and the (answer, rater kind, rater id) votes changed after
    `after_event` (for rerankers that keep votes in memory)."""
    statement = select(
        FeedbackEvent.id, FeedbackEvent.answer_id, FeedbackEvent.rater_kind, FeedbackEvent.rater_id
    ).where(FeedbackEvent.id > after_event)
    with translating("reading feedback events"):
        rows = session.execute(statement.order_by(FeedbackEvent.id)).all()
    last = rows[-1][0] if rows else after_event
    return last, {(row[1], row[2], row[3]) for row in rows}


def load_votes(
    session: Session, *, keys: Collection[tuple[str, str, str]] | None = None
) -> list[tuple[Feedback, Answer]]:
    """Live votes with their answers: all of them, or those with these (answer, kind, id).

    Only what reranking and training read is loaded (not the passage snapshots, answer
    texts or traces), so a hundred thousand votes load in seconds.
    """
    statement = (
        select(Feedback, Answer)
        .join(Answer)
        .options(
            defer(Feedback.passages),
            defer(Feedback.comment),
            defer(Feedback.correction),
            load_only(Answer.id, Answer.question, Answer.rewritten_query, Answer.citations),
        )
        .order_by(Feedback.id)
    )
    rows: list[tuple[Feedback, Answer]] = []
    with translating("loading votes"):
        if keys is None:
            return [(r[0], r[1]) for r in session.execute(statement)]
        answers = sorted({key[0] for key in keys})
        for start in range(0, len(answers), 500):
            batch = statement.where(Feedback.answer_id.in_(answers[start : start + 500]))
            rows.extend(
                (r[0], r[1])
                for r in session.execute(batch)
                if (r[0].answer_id, r[0].rater_kind, r[0].rater_id) in keys
            )
    return rows
