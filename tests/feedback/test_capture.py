"""Capturing votes on real SQLite and PostgreSQL: replace, withdraw, retries, history,
review lists and stats, export records."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

from db.feedback import AnswerNotFound, FeedbackFilters, IdempotencyKeyReused
from feedback.capture import FeedbackService, PassageMatch, Vote, validate_vote
from feedback.types import ExportFilters
from tests.feedback.helpers import store_answer, store_doc


@pytest.fixture
def answer(session_factory: sessionmaker[Session]) -> str:
    doc = store_doc(session_factory, "fees", ["Wires cost $45.", "ATM use is free."])
    return store_answer(
        session_factory,
        "how much is a wire?",
        [("fees", 1, doc.added_keys[0])],
        retrieved=[("fees", 1, doc.added_keys[0]), ("fees", 1, doc.added_keys[1])],
        history=("hello",),
    )


def test_vote_replace_and_unchanged(session_factory: sessionmaker[Session], answer: str) -> None:
    service = FeedbackService(session_factory)
    first = service.vote(answer, Vote("up", "customer", "c1", reasons=("clear",)))
    assert first.status == "created" and first.rating == "up" and first.channel == "web"
    assert first.product == "savings"

    same = service.vote(answer, Vote("up", "customer", "c1", reasons=("clear",)))
    assert same.status == "unchanged" and same.id == first.id

    changed = service.vote(answer, Vote("down", "customer", "c1", comment="wrong fee"))
    assert changed.status == "replaced" and changed.id == first.id and changed.rating == "down"

    other = service.vote(answer, Vote("up", "agent", "c1"))  # another rater (kind differs)
    assert other.status == "created" and other.id != first.id

    live, history = service.history(answer)
    assert [(v.rater_kind, v.rating) for v in live] == [("customer", "down"), ("agent", "up")]
    assert [(e.action, e.rating) for e in history] == [
        ("created", "up"),
        ("replaced", "down"),
        ("created", "up"),
    ]
    assert history[0].reasons == ("clear",) and history[1].comment == "wrong fee"


def test_a_first_vote_racing_a_vote_and_a_withdrawal_of_the_same_rater_is_stored(
    session_factory: sessionmaker[Session], answer: str
) -> None:
    """On PostgreSQL, a rater's first vote lost the insert to a concurrent vote of the
    same rater, and that vote was withdrawn before the loser could replace it: the loser
    found no row and failed (a 500 in the API, the vote lost). The other two requests
    are injected at those two moments; on SQLite writers run one at a time."""
    engine = session_factory.kw["bind"]
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite runs write transactions one at a time (BEGIN IMMEDIATE)")
    service = FeedbackService(session_factory)
    rival = Vote("down", "customer", "c1", comment="first")
    steps: list[str] = []

    def interleave(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if len(steps) >= 2 or "busy" in steps:
            return
        steps.append("busy")  # the injected requests' own statements pass through here
        try:
            if not steps[:-1] and statement.startswith("INSERT INTO feedback "):
                assert service.vote(answer, rival).status == "created"
                steps.insert(0, "voted")
            elif steps[:-1] == ["voted"] and "FOR UPDATE" in statement:
                assert service.withdraw(answer, rater_kind="customer", rater_id="c1")
                steps.insert(1, "withdrew")
        finally:
            steps.remove("busy")

    event.listen(engine, "before_cursor_execute", interleave)
    try:
        stored = service.vote(answer, Vote("up", "customer", "c1"))
    finally:
        event.remove(engine, "before_cursor_execute", interleave)
    assert steps == ["voted", "withdrew"]
    assert stored.status == "created" and stored.rating == "up"
    live, history = service.history(answer)
    assert [(v.rating, v.comment) for v in live] == [("up", None)]
    assert [e.action for e in history] == ["created", "withdrawn", "created"]


def test_a_retried_request_counts_once(session_factory: sessionmaker[Session], answer: str) -> None:
    service = FeedbackService(session_factory)
    up = Vote("up", "customer", "c1")
    first = service.vote(answer, up, idempotency_key="k1")
    retry = service.vote(answer, up, idempotency_key="k1")
    assert (first.status, retry.status) == ("created", "replayed")
    assert retry.id == first.id

    # A later vote, then a late retry of the first request: the later vote stands.
    service.vote(answer, Vote("down", "customer", "c1"), idempotency_key="k2")
    late = service.vote(answer, up, idempotency_key="k1")
    assert late.status == "replayed" and late.rating == "down"
    assert len(service.history(answer)[1]) == 2

    with pytest.raises(IdempotencyKeyReused, match="different request"):
        service.vote(answer, Vote("up", "customer", "c1", comment="x"), idempotency_key="k1")
    # Keys belong to a rater: another rater may use the same one.
    assert (
        service.vote(answer, up.__class__("up", "customer", "c2"), idempotency_key="k1").status
        == "created"
    )


def test_withdraw_keeps_the_history(session_factory: sessionmaker[Session], answer: str) -> None:
    service = FeedbackService(session_factory)
    service.vote(answer, Vote("down", "customer", "c1"))
    assert service.withdraw(answer, rater_kind="customer", rater_id="c1") is True
    assert service.withdraw(answer, rater_kind="customer", rater_id="c1") is False
    live, history = service.history(answer)
    assert live == []
    assert [e.action for e in history] == ["created", "withdrawn"]
    # Voting again after a withdrawal starts a new vote.
    again = service.vote(answer, Vote("up", "customer", "c1"))
    assert again.status == "created"


def test_unknown_answers_and_invalid_votes(session_factory: sessionmaker[Session]) -> None:
    service = FeedbackService(session_factory)
    with pytest.raises(AnswerNotFound, match="no answer"):
        service.vote("missing", Vote("up", "customer", "c1"))
    with pytest.raises(AnswerNotFound):
        service.withdraw("missing", rater_kind="customer", rater_id="c1")
    with pytest.raises(AnswerNotFound):
        service.history("missing")
    for bad, field in [
        (Vote("meh", "customer", "c"), "rating"),
        (Vote("up", "robot", "c"), "rater.kind"),
        (Vote("up", "customer", " "), "rater.id"),
        (Vote("up", "customer", "c", reasons=("x" * 65,)), "reasons"),
        (Vote("up", "customer", "c", comment="x" * 4001), "comment"),
    ]:
        with pytest.raises(ValueError, match=field.replace(".", r"\.")):
            validate_vote(bad)


def test_the_vote_keeps_what_the_user_saw(
    session_factory: sessionmaker[Session], answer: str
) -> None:
    def matcher(text: str) -> PassageMatch | None:
        return PassageMatch(999, "fees", 1, "Wires cost $45.", 0.97) if "45" in text else None

    service = FeedbackService(session_factory, matcher=matcher)
    service.vote(answer, Vote("down", "agent", "a1", correction="It is $45."))
    # The documents change afterwards: the record still has the old passages.
    store_doc(session_factory, "fees", ["Wires now cost $50."])

    (record,) = service.records()
    assert record.question == "how much is a wire?"
    assert record.rewritten_query == "how much is a wire?"
    assert record.history == (("user", "hello"), ("assistant", "ok"))
    assert [(p.doc_id, p.version, p.rank, p.cited) for p in record.passages] == [
        ("fees", 1, 1, True),
        ("fees", 1, 2, False),
    ]
    assert [p.text for p in record.passages] == ["Wires cost $45.", "ATM use is free."]
    assert record.metadata["correction_passage"] == "Wires cost $45."
    assert record.metadata["correction_chunk_id"] == 999
    assert record.metadata["generator"] == "extractive"
    assert record.rater_kind == "agent" and record.correction == "It is $45."


def test_list_and_stats_filters(session_factory: sessionmaker[Session]) -> None:
    doc = store_doc(session_factory, "cards", ["Freeze a card in the app."], product="cards")
    key = doc.added_keys[0]
    service = FeedbackService(session_factory)
    web = store_answer(session_factory, "freeze card", [("cards", 1, key)], channel="web")
    agent = store_answer(session_factory, "lost card", [("cards", 1, key)], channel="agent")
    service.vote(web, Vote("up", "customer", "c1", reasons=("clear", "fast")))
    service.vote(web, Vote("down", "customer", "c2", reasons=("wrong",)))
    service.vote(agent, Vote("down", "agent", "a1", reasons=("wrong", "outdated")))

    items, total = service.list_votes(FeedbackFilters())
    assert total == 3 and len(items) == 3
    assert items[0].question in {"freeze card", "lost card"}
    _, down = service.list_votes(FeedbackFilters(rating="down"))
    assert down == 2
    assert service.list_votes(FeedbackFilters(channel="agent"))[1] == 1
    assert service.list_votes(FeedbackFilters(product="Cards"))[1] == 3
    assert service.list_votes(FeedbackFilters(product="loans"))[1] == 0
    wrong, count = service.list_votes(FeedbackFilters(reason="wrong"))
    assert count == 2 and {v.rater_id for v in wrong} == {"c2", "a1"}
    assert service.list_votes(FeedbackFilters(rater_kind="agent"))[1] == 1
    now = dt.datetime.now(dt.UTC)
    assert service.list_votes(FeedbackFilters(since=now + dt.timedelta(hours=1)))[1] == 0
    assert service.list_votes(FeedbackFilters(until=now + dt.timedelta(hours=1)))[1] == 3
    page, total = service.list_votes(FeedbackFilters(), limit=1, offset=1)
    assert len(page) == 1 and total == 3

    stats = service.stats(FeedbackFilters())
    assert (stats["total"], stats["up"], stats["down"]) == (3, 1, 2)
    assert stats["approval_rate"] == pytest.approx(1 / 3, abs=1e-4)
    assert stats["by_channel"] == {"web": {"up": 1, "down": 1}, "agent": {"up": 0, "down": 1}}
    assert stats["by_rater_kind"]["agent"] == {"up": 0, "down": 1}
    assert stats["by_product"] == {"cards": {"up": 1, "down": 2}}
    assert stats["by_reason"] == {"wrong": 2, "clear": 1, "fast": 1, "outdated": 1}
    assert service.stats(FeedbackFilters(rating="up"))["by_reason"] == {"clear": 1, "fast": 1}
    assert service.stats(FeedbackFilters(channel="api"))["approval_rate"] is None


def test_listeners_run_after_changes(session_factory: sessionmaker[Session], answer: str) -> None:
    calls: list[str] = []
    service = FeedbackService(session_factory, listeners=[lambda: calls.append("x")])
    service.vote(answer, Vote("up", "customer", "c1"))
    service.vote(answer, Vote("up", "customer", "c1"))  # unchanged: no refresh needed
    service.withdraw(answer, rater_kind="customer", rater_id="c1")

    def broken() -> None:
        raise RuntimeError("reranker down")

    service.add_listener(broken)  # a failing listener never loses the vote
    assert service.vote(answer, Vote("down", "customer", "c1")).status == "created"
    assert calls == ["x", "x", "x"]


def test_export_writes_the_split_and_manifest(
    session_factory: sessionmaker[Session], answer: str, tmp_path: object
) -> None:
    from pathlib import Path

    service = FeedbackService(session_factory)
    service.vote(answer, Vote("up", "customer", "c1"))
    out = Path(str(tmp_path)) / "sft.jsonl"
    result = service.export("sft", out, ExportFilters(), validation_fraction=0.0)
    assert result.counts["train"] == 1
    assert Path(result.manifest_path).is_file()
    assert "how much is a wire?" in Path(result.files["train"]).read_text()
