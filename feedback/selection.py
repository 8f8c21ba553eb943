"""Which answers a training set is made of: votes grouped per answer, filtered, and
decided by majority or by an agent's correction (`select_answers`, `AnswerVotes`).

The dataset builders and the export writer of `feedback.datasets` work on its output.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from feedback.errors import ExportError
from feedback.types import ExportFilters, FeedbackRecord, Rating


@dataclass(frozen=True, slots=True)
class AnswerVotes:
    """The votes on one answer that passed the filters, and what they decided.

    `rating` is the majority rating, `agreement` the share of votes that agree with it
    (``max(up, down) / (up + down)``). An agent's correction is authoritative: a corrected
    answer is rated ``"down"`` whatever the other votes say, and `correction` holds the
    latest agent correction.
    """

    answer: FeedbackRecord
    votes: tuple[FeedbackRecord, ...]
    rating: Rating
    agreement: float
    correction: str | None

    @property
    def group(self) -> str:
        rec = self.answer
        return (
            f"conversation:{rec.conversation_id}"
            if rec.conversation_id
            else f"answer:{rec.answer_id}"
        )


def as_aware(moment: dt.datetime) -> dt.datetime:
    """`moment`, with UTC as its time zone when it has none (naive times are UTC)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


def _check_filters(filters: ExportFilters) -> None:
    if filters.min_agreement is not None and not 0.0 < filters.min_agreement <= 1.0:
        raise ExportError(f"min_agreement must be in (0, 1], got {filters.min_agreement}")
    if (
        filters.since is not None
        and filters.until is not None
        and as_aware(filters.since) >= as_aware(filters.until)
    ):
        raise ExportError("the time window is empty: `since` must be before `until`")


def _in_scope(rec: FeedbackRecord, filters: ExportFilters) -> bool:
    created = as_aware(rec.created_at)
    return (
        (filters.since is None or created >= as_aware(filters.since))
        and (filters.until is None or created < as_aware(filters.until))
        and (filters.channel is None or rec.channel == filters.channel)
        and (filters.product is None or rec.product == filters.product)
    )


def select_answers(records: Iterable[FeedbackRecord], filters: ExportFilters) -> list[AnswerVotes]:
    """Group votes by answer and keep the answers the filters admit.

    Rules, in order: a vote counts when ``since <= created_at < until`` (naive times are
    UTC) and its channel and product match; an uncorrected answer with as many up as down
    votes has no majority and is dropped, as is one whose agreement is below
    `min_agreement` (corrected answers are exempt); then the answer's rating must equal
    `filters.rating` and, with `filters.reason`, one of its votes must give that reason.
    Answers come out in order of their first vote.
    """
    _check_filters(filters)
    by_answer: dict[str, list[FeedbackRecord]] = {}
    for rec in records:
        if _in_scope(rec, filters):
            by_answer.setdefault(rec.answer_id, []).append(rec)
    selected: list[AnswerVotes] = []
    for votes in by_answer.values():
        votes.sort(key=lambda r: (as_aware(r.created_at), r.feedback_id))
        counts = Counter(v.rating for v in votes)
        majority: Rating = "up" if counts["up"] > counts["down"] else "down"
        agreement = counts[majority] / len(votes)
        corrections = [
            v.correction.strip()
            for v in votes
            if v.rater_kind == "agent" and v.correction and v.correction.strip()
        ]
        correction = corrections[-1] if corrections else None
        if correction is not None:
            majority = "down"
        elif counts["up"] == counts["down"] or (
            filters.min_agreement is not None and agreement < filters.min_agreement
        ):
            continue
        if filters.rating is not None and majority != filters.rating:
            continue
        if filters.reason is not None and not any(filters.reason in v.reasons for v in votes):
            continue
        selected.append(AnswerVotes(votes[0], tuple(votes), majority, agreement, correction))
    selected.sort(key=lambda a: (as_aware(a.votes[0].created_at), a.answer.answer_id))
    return selected
