"""The trust signals over search hits: best cosine and retriever agreement."""

from __future__ import annotations

import pytest

from bot.answers.confidence import best_cosine, retriever_support
from retrieval.types import SearchHit


def hit(key: int, doc_id: str, *, dense: float | None, bm25: float | None) -> SearchHit:
    return SearchHit(
        key=key,
        doc_id=doc_id,
        version=1,
        title=doc_id,
        section_path=(),
        text=f"passage {key}",
        metadata={},
        score=0.0,
        bm25_score=bm25,
        dense_score=dense,
        rank=key,
    )


def test_one_document_first_on_both_lists_is_full_support() -> None:
    hits = [
        hit(1, "fees", dense=0.8, bm25=12.0),
        hit(2, "cards", dense=0.6, bm25=7.0),
        hit(3, "loans", dense=0.4, bm25=3.0),
    ]
    assert retriever_support(hits) == pytest.approx(1.0)


def test_favourites_last_on_each_others_list_is_the_floor() -> None:
    hits = [
        hit(1, "fees", dense=0.8, bm25=2.0),
        hit(2, "cards", dense=0.5, bm25=5.0),
        hit(3, "loans", dense=0.2, bm25=9.0),
    ]
    # fees: 0.7 * 1 + 0.3 * 0; cards: 0.7 * 0.5 + 0.3 * 3/7; loans: 0.7 * 0 + 0.3 * 1
    assert retriever_support(hits) == pytest.approx(0.7)
    assert retriever_support(hits, dense_weight=0.5) == pytest.approx(0.5)  # max(w, 1 - w)


def test_partial_agreement_follows_the_formula() -> None:
    hits = [
        hit(1, "fees", dense=0.9, bm25=6.0),
        hit(2, "cards", dense=0.5, bm25=10.0),
        hit(3, "loans", dense=0.3, bm25=2.0),
    ]
    # fees: 0.7 * 1 + 0.3 * (6 - 2) / (10 - 2)
    assert retriever_support(hits) == pytest.approx(0.85)


def test_chunks_of_one_document_do_not_count_as_disagreement() -> None:
    hits = [
        hit(1, "fees", dense=0.8, bm25=3.0),
        hit(2, "fees", dense=0.5, bm25=9.0),
        hit(3, "cards", dense=0.6, bm25=5.0),
        hit(4, "loans", dense=0.2, bm25=1.0),
    ]
    assert retriever_support(hits) == pytest.approx(1.0)
    as_documents = [
        hit(h.key, f"doc-{h.key}", dense=h.dense_score, bm25=h.bm25_score) for h in hits
    ]
    assert retriever_support(as_documents) < 0.9


def test_a_document_missing_from_one_list_scores_zero_there() -> None:
    hits = [
        hit(1, "fees", dense=0.8, bm25=None),
        hit(2, "cards", dense=0.4, bm25=4.0),
        hit(3, "loans", dense=0.3, bm25=2.0),
    ]
    assert retriever_support(hits) == pytest.approx(0.7)


@pytest.mark.parametrize(
    "hits",
    [
        [],
        [hit(1, "fees", dense=0.8, bm25=None), hit(2, "cards", dense=0.4, bm25=None)],
        [hit(1, "fees", dense=None, bm25=4.0)],
    ],
)
def test_support_is_undefined_without_both_retrievers(hits: list[SearchHit]) -> None:
    assert retriever_support(hits) is None


def test_best_cosine_is_the_highest_dense_score() -> None:
    hits = [hit(1, "fees", dense=0.4, bm25=9.0), hit(2, "cards", dense=0.7, bm25=1.0)]
    assert best_cosine(hits) == pytest.approx(0.7)
    assert best_cosine([hit(1, "fees", dense=None, bm25=9.0)]) == 0.0
    assert best_cosine([]) == 0.0
