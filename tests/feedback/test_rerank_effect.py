"""Feedback moves documents for similar new questions, within limits (real model, SQL)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy.orm import Session, sessionmaker

from bot.knowledge import KnowledgeService
from feedback.capture import FeedbackService, Vote
from feedback.rerank import FeedbackReranker, RerankedIndex
from feedback.rerank_math import RerankConfig
from retrieval.embedded import EmbeddedIndex
from retrieval.embedder import SentenceTransformerEmbedder
from retrieval.types import ParsedDocument, SearchHit, SearchRequest, Section
from tests.feedback.helpers import store_answer, store_doc

pytestmark = pytest.mark.slow

VOTED = "what does it cost to send a wire transfer?"
NEW = "how much does a wire transfer cost?"  # similar (cosine 0.935), not identical
OTHER = "how do I reset my online banking password?"


def _hit(key: int, doc_id: str, score: float, version: int = 1) -> SearchHit:
    return SearchHit(key, doc_id, version, doc_id, (), f"text of {doc_id}", {}, score, rank=1)


@pytest.fixture
def setup(
    session_factory: sessionmaker[Session], embedder: SentenceTransformerEmbedder
) -> tuple[FeedbackService, FeedbackReranker, Callable[..., str], dict[str, int]]:
    keys = {
        "wires": store_doc(session_factory, "wires", ["Outgoing wires cost $30."]).added_keys[0],
        "atm": store_doc(session_factory, "atm", ["International wires cost $45."]).added_keys[0],
    }
    reranker = FeedbackReranker(session_factory, embedder, RerankConfig(adapter="off"))
    service = FeedbackService(session_factory, embedder=embedder, listeners=[reranker.refresh])

    def answer(question: str = VOTED, doc: str = "wires", version: int = 1) -> str:
        return store_answer(session_factory, question, [(doc, version, keys[doc])])

    return service, reranker, answer, keys


def _order(
    reranker: FeedbackReranker,
    embedder: SentenceTransformerEmbedder,
    query: str,
    hits: list[SearchHit],
) -> list[str]:
    return [h.doc_id for h in reranker.adjust(embedder.embed_query(query), hits)]


def test_downvotes_move_a_document_down_for_similar_questions(
    setup: tuple[FeedbackService, FeedbackReranker, Callable[..., str], dict[str, int]],
    embedder: SentenceTransformerEmbedder,
) -> None:
    service, reranker, answer, keys = setup
    hits = [_hit(keys["wires"], "wires", 0.60), _hit(keys["atm"], "atm", 0.55)]
    assert _order(reranker, embedder, NEW, hits) == ["wires", "atm"]

    for rater in ("c1", "c2", "c3"):
        service.vote(answer(), Vote("down", "customer", rater))

    assert _order(reranker, embedder, NEW, hits) == ["atm", "wires"]  # right away
    assert _order(reranker, embedder, VOTED, hits) == ["atm", "wires"]
    assert _order(reranker, embedder, OTHER, hits) == ["wires", "atm"]  # unrelated: untouched
    adjusted = reranker.adjust(embedder.embed_query(NEW), hits)
    assert [h.rank for h in adjusted] == [1, 2]
    assert reranker.version.startswith("fb-1:")


def test_one_vote_is_only_a_hint(
    setup: tuple[FeedbackService, FeedbackReranker, Callable[..., str], dict[str, int]],
    embedder: SentenceTransformerEmbedder,
) -> None:
    service, reranker, answer, keys = setup
    hits = [_hit(keys["wires"], "wires", 0.60), _hit(keys["atm"], "atm", 0.52)]
    service.vote(answer(), Vote("down", "customer", "c1"))
    adjusted = reranker.adjust(embedder.embed_query(NEW), hits)
    assert [h.doc_id for h in adjusted] == ["wires", "atm"]
    change = 0.60 - adjusted[0].score
    assert 0 < change <= RerankConfig().weight / 3 + 1e-9


def test_a_hostile_raters_thousands_of_votes_are_capped(
    setup: tuple[FeedbackService, FeedbackReranker, Callable[..., str], dict[str, int]],
    embedder: SentenceTransformerEmbedder,
) -> None:
    service, reranker, answer, keys = setup
    hits = [_hit(keys["wires"], "wires", 0.60), _hit(keys["atm"], "atm", 0.52)]
    for rater in ("c1", "c2", "c3", "c4"):  # four honest customers found it helpful
        service.vote(answer(), Vote("up", "customer", rater))
    honest = reranker.adjust(embedder.embed_query(VOTED), hits)[0].score
    for _ in range(300):  # one hostile customer, hundreds of answers to similar questions
        service.vote(answer(NEW), Vote("down", "customer", "hostile"))

    adjusted = reranker.adjust(embedder.embed_query(VOTED), hits)
    assert [h.doc_id for h in adjusted] == ["wires", "atm"]
    # However many they send, the hostile rater weighs what one honest vote weighs.
    assert honest == pytest.approx(0.60 + RerankConfig().weight * 4 / 6)
    one_vote = 0.60 + RerankConfig().weight * (4 - 1) / (4 + 1 + 2)
    assert adjusted[0].score == pytest.approx(one_vote)


def test_agents_count_more_than_customers(
    setup: tuple[FeedbackService, FeedbackReranker, Callable[..., str], dict[str, int]],
    embedder: SentenceTransformerEmbedder,
) -> None:
    service, reranker, answer, keys = setup
    hits = [_hit(keys["wires"], "wires", 0.60)]
    answer_id = answer()
    service.vote(answer_id, Vote("up", "customer", "c1"))
    customer = reranker.adjust(embedder.embed_query(VOTED), hits)[0].score
    service.withdraw(answer_id, rater_kind="customer", rater_id="c1")
    service.vote(answer_id, Vote("up", "agent", "a1"))
    agent = reranker.adjust(embedder.embed_query(VOTED), hits)[0].score
    assert customer == pytest.approx(0.60 + RerankConfig().weight * 1 / 3)
    assert agent == pytest.approx(0.60 + RerankConfig().weight * 2 / 4)


def test_a_new_document_version_resets_the_effect(
    setup: tuple[FeedbackService, FeedbackReranker, Callable[..., str], dict[str, int]],
    session_factory: sessionmaker[Session],
    embedder: SentenceTransformerEmbedder,
) -> None:
    service, reranker, answer, keys = setup
    for rater in ("c1", "c2", "c3"):
        service.vote(answer(), Vote("down", "customer", rater))
    updated = store_doc(session_factory, "wires", ["Outgoing wires now cost $25."])
    assert updated.version == 2
    hits = [_hit(updated.added_keys[0], "wires", 0.60, version=2), _hit(keys["atm"], "atm", 0.55)]
    assert _order(reranker, embedder, NEW, hits) == ["wires", "atm"]


def test_withdrawn_votes_stop_counting_and_other_processes_catch_up(
    setup: tuple[FeedbackService, FeedbackReranker, Callable[..., str], dict[str, int]],
    session_factory: sessionmaker[Session],
    embedder: SentenceTransformerEmbedder,
) -> None:
    service, reranker, answer, keys = setup
    # Another replica's reranker, refreshing on its own clock.
    now = [0.0]
    replica = FeedbackReranker(
        session_factory, embedder, RerankConfig(adapter="off"), clock=lambda: now[0]
    )
    hits = [_hit(keys["wires"], "wires", 0.60), _hit(keys["atm"], "atm", 0.55)]
    assert _order(replica, embedder, NEW, hits) == ["wires", "atm"]
    ids = [answer() for _ in range(3)]
    for number, answer_id in enumerate(ids):
        service.vote(answer_id, Vote("down", "customer", f"c{number}"))
    assert _order(replica, embedder, NEW, hits) == ["wires", "atm"]  # not refreshed yet
    now[0] += 5
    assert _order(replica, embedder, NEW, hits) == ["atm", "wires"]
    for number, answer_id in enumerate(ids):
        service.withdraw(answer_id, rater_kind="customer", rater_id=f"c{number}")
    assert _order(reranker, embedder, NEW, hits) == ["wires", "atm"]


def test_votes_without_a_stored_embedding_are_embedded_on_load(
    setup: tuple[FeedbackService, FeedbackReranker, Callable[..., str], dict[str, int]],
    session_factory: sessionmaker[Session],
    embedder: SentenceTransformerEmbedder,
) -> None:
    _, _, answer, keys = setup
    plain = FeedbackService(session_factory)  # no embedder: nothing stored with the vote
    for rater in ("c1", "c2", "c3"):
        plain.vote(answer(), Vote("down", "customer", rater))
    reranker = FeedbackReranker(session_factory, embedder, RerankConfig(adapter="off"))
    hits = [_hit(keys["wires"], "wires", 0.60), _hit(keys["atm"], "atm", 0.55)]
    assert _order(reranker, embedder, NEW, hits) == ["atm", "wires"]


def test_reranked_index_is_the_search_path(
    session_factory: sessionmaker[Session],
    embedder: SentenceTransformerEmbedder,
    tmp_path: object,
) -> None:
    from pathlib import Path

    index = EmbeddedIndex(Path(str(tmp_path)) / "index", dimension=embedder.dimension).open()
    # Two documents: min-max fusion puts them 1.0 apart, so give feedback a big weight.
    config = RerankConfig(adapter="off", depth=5, weight=2.0)
    reranker = FeedbackReranker(session_factory, embedder, config)
    wrapped = RerankedIndex(index, reranker)
    knowledge = KnowledgeService(session_factory=session_factory, index=wrapped, embedder=embedder)
    try:
        docs = [
            ParsedDocument(
                "Wire fees", (Section(("Wire fees",), "Outgoing wires cost $30."),), doc_id="wires"
            ),
            ParsedDocument(
                "Wire limits",
                (Section(("Wire limits",), "You can send wires up to $50,000 a day."),),
                doc_id="limits",
            ),
        ]
        knowledge.ingest_documents(docs)
        assert wrapped.count() == 2 and wrapped.keys() == index.keys()
        first = knowledge.search(SearchRequest(query=NEW, k=1)).hits
        assert [h.doc_id for h in first] == ["wires"]
        service = FeedbackService(session_factory, embedder=embedder, listeners=[reranker.refresh])
        for rater in ("c1", "c2", "c3", "c4", "c5", "c6"):
            answer_id = store_answer(session_factory, VOTED, [("wires", 1, first[0].key)])
            service.vote(answer_id, Vote("down", "customer", rater))
        reranked = knowledge.search(SearchRequest(query=NEW, k=1)).hits
        assert [(h.doc_id, h.rank) for h in reranked] == [("limits", 1)]
        # BM25-only searches have no query vector: they pass through.
        assert (
            knowledge.search(SearchRequest(query=NEW, k=1, mode="bm25")).hits[0].doc_id == "wires"
        )
        assert wrapped.reranker_version == reranker.version
        off = RerankedIndex(
            index, FeedbackReranker(session_factory, embedder, RerankConfig(enabled=False))
        )
        assert off.reranker_version is None
        assert (
            off.search(SearchRequest(query=NEW, k=1), embedder.embed_query(NEW))[0].doc_id
            == "wires"
        )
    finally:
        wrapped.close()
