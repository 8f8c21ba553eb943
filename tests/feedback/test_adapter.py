"""The learned adapter: fitting, choosing a version, rollback, training from SQL votes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.knowledge import KnowledgeService
from db.models import Answer
from db.reranker_versions import list_reranker_versions, save_reranker_version
from feedback.adapter import (
    ADAPTER_KIND,
    Adapter,
    AdapterExample,
    build_examples,
    fit_adapter,
    load_adapter,
    mean_reciprocal_rank,
)
from feedback.capture import FeedbackService, Vote
from feedback.records import training_votes
from feedback.rerank import FeedbackReranker, RerankedIndex
from feedback.rerank_math import RerankConfig
from retrieval.embedded import EmbeddedIndex
from retrieval.embedder import SentenceTransformerEmbedder
from retrieval.types import ParsedDocument, SearchRequest, Section
from tests.feedback.helpers import store_answer


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def _examples(count: int, seed: int) -> list[AdapterExample]:
    """Each answer is its query with coordinates swapped in pairs (plus noise): the base
    scores rank it last, a linear map of the space can learn to rank it first."""
    rng = np.random.default_rng(seed)
    swap = np.eye(8, dtype=np.float32)[[1, 0, 3, 2, 5, 4, 7, 6]]
    examples = []
    for _ in range(count):
        q = _unit(rng.standard_normal(8))
        others = [_unit(q + 0.9 * rng.standard_normal(8)) for _ in range(4)]
        answer = _unit(q @ swap + 0.3 * rng.standard_normal(8))
        candidates = np.stack([*others, answer])
        targets = np.array([0, 0, 0, 0, 1], dtype=np.float32)
        examples.append(AdapterExample(q, candidates, candidates @ q, targets, 1.0))
    return examples


def test_the_identity_adapter_changes_nothing() -> None:
    adapter = Adapter("id", "m", np.eye(3, dtype=np.float32))
    q = np.array([1.0, 0.0, 0.0], dtype=np.float32)
    vectors = [np.array([0.6, 0.8, 0.0], dtype=np.float32), None]
    assert adapter.changes(q, vectors) == pytest.approx([0.0, 0.0], abs=1e-6)


def test_fit_adapter_learns_what_the_votes_agree_on() -> None:
    train, held_out = _examples(60, seed=1), _examples(40, seed=2)
    matrix = fit_adapter(train, gamma=2.0, epochs=60)
    assert matrix.shape == (8, 8)
    adapter = Adapter("learned", "m", matrix)
    before = mean_reciprocal_rank(held_out, None, 2.0)
    after = mean_reciprocal_rank(held_out, adapter, 2.0)
    assert after > before + 0.3
    # Deterministic for a seed.
    assert np.array_equal(matrix, fit_adapter(train, gamma=2.0, epochs=60))
    with pytest.raises(ValueError):
        fit_adapter([], gamma=2.0)


def _store(sessions: sessionmaker[Session], version: str, model: str, accepted: bool) -> None:
    with sessions.begin() as session:
        save_reranker_version(
            session,
            version_id=version,
            kind=ADAPTER_KIND,
            embedding_model=model,
            dimension=2,
            weights=np.eye(2, dtype="<f4").tobytes(),
            params={},
            metrics={"accepted": accepted},
        )


def test_choosing_and_rolling_back_versions(session_factory: sessionmaker[Session]) -> None:
    _store(session_factory, "adapter-old", "minilm", accepted=True)
    _store(session_factory, "adapter-bad", "minilm", accepted=False)
    _store(session_factory, "adapter-other", "tuned", accepted=True)
    with session_factory() as session:
        assert next(r.id for r in list_reranker_versions(session)) == "adapter-other"
        latest = load_adapter(session, "latest", "minilm")
        assert latest is not None and latest.version == "adapter-old"  # newest accepted
        pinned = load_adapter(session, "adapter-bad", "minilm")  # an operator's choice
        assert pinned is not None and pinned.version == "adapter-bad"
        assert load_adapter(session, "off", "minilm") is None
        assert load_adapter(session, "adapter-missing", "minilm") is None
        assert load_adapter(session, "adapter-other", "minilm") is None  # other model
        assert load_adapter(session, "latest", "unknown-model") is None


@pytest.mark.slow
def test_training_from_votes_stores_a_version_the_reranker_serves(
    session_factory: sessionmaker[Session], embedder: SentenceTransformerEmbedder, tmp_path: Path
) -> None:
    index = EmbeddedIndex(tmp_path / "index", dimension=embedder.dimension).open()
    reranker = FeedbackReranker(session_factory, embedder, RerankConfig(depth=5))
    knowledge = KnowledgeService(
        session_factory=session_factory, index=RerankedIndex(index, reranker), embedder=embedder
    )
    try:
        topics = ["wire fees", "card freezing", "savings rates", "mortgage terms", "atm limits"]
        knowledge.ingest_documents(
            [
                ParsedDocument(t, (Section((t,), f"All about {t} at our bank."),), doc_id=t)
                for t in topics
            ]
        )
        service = FeedbackService(session_factory, embedder=embedder, listeners=[reranker.refresh])
        assert reranker.train(index.search, min_examples=3)["version"] is None  # no votes yet
        for round_ in range(2):
            for topic in topics:
                request = SearchRequest(query=topic, k=1)
                (hit,) = index.search(request, embedder.embed_query(topic))
                question = f"question {round_} about {topic}"
                answer_id = store_answer(session_factory, question, [(hit.doc_id, 1, hit.key)])
                service.vote(answer_id, Vote("up", "customer", f"c-{round_}-{topic}"))
        report = reranker.train(index.search, min_examples=3, epochs=5, validation_fraction=0.0)
        assert report["version"].startswith("adapter-") and report["examples"] == 10
        assert report["accepted"] is True
        assert reranker.adapter is not None and reranker.adapter.version == report["version"]
        assert reranker.version.endswith("+" + report["version"])

        # The version names the inputs: the same votes give the same version, one more
        # vote a new one, and withdrawing it brings the first back as the one served.
        def train() -> str:
            again = reranker.train(index.search, min_examples=3, epochs=5, validation_fraction=0.0)
            assert again["accepted"] is True
            return str(again["version"])

        assert train() == report["version"]
        (hit,) = index.search(SearchRequest(query="wire fees", k=1), embedder.embed_query("wire"))
        extra = store_answer(session_factory, "what does a wire cost", [(hit.doc_id, 1, hit.key)])
        service.vote(extra, Vote("up", "agent", "a-1"))
        newer = train()
        assert newer != report["version"]
        assert reranker.adapter is not None and reranker.adapter.version == newer
        assert service.withdraw(extra, rater_kind="agent", rater_id="a-1")
        assert train() == report["version"]
        assert reranker.adapter is not None and reranker.adapter.version == report["version"]
        with session_factory() as session:
            assert {r.id for r in list_reranker_versions(session)} == {report["version"], newer}

        # Validation holds out whole conversations (seeded ids give a seeded split).
        with session_factory() as session:
            votes = training_votes(session)
            conversations = {
                answer.id: answer.conversation_id for answer in session.scalars(select(Answer))
            }
        examples = build_examples(
            session_factory, embedder, index.search, votes, lambda _: 1.0, depth=5
        )
        assert len(examples) == 10
        assert sorted(e.group for e in examples) == sorted(
            conversations[v.answer_id] for v in votes
        )
        assert all(v.conversation_id == conversations[v.answer_id] for v in votes)
    finally:
        index.close()
