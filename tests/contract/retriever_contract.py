"""The contract every index backend passes, written once (Haystack-style test mixin).

A backend's test class subclasses `RetrieverContract` and provides a `backend`
fixture: an empty `IndexBackend` built for `DIMENSION`-sized vectors, fresh for each
test. `make_chunks` and `embed` need no model: vectors come from `hash_embedding`, a
seeded random projection of the text's words, so texts that share words are close in
cosine similarity, the way a real embedder would make them.

    class TestMyIndex(RetrieverContract):
        @pytest.fixture
        def backend(self, tmp_path):
            with MyIndex(tmp_path, dimension=DIMENSION) as index:
                yield index
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest

from retrieval.types import (
    IndexBackend,
    IndexedChunk,
    RetrievalMode,
    SearchFilters,
    SearchRequest,
    Vector,
)

DIMENSION = 384
MODES: tuple[RetrievalMode, ...] = ("bm25", "dense", "hybrid")
_WORDS = re.compile(r"[a-z0-9]+")

ChunkFactory = Callable[..., list[IndexedChunk]]


def _word_vector(word: str) -> Vector:
    seed = int.from_bytes(hashlib.sha256(word.encode()).digest()[:8], "little")
    return np.random.default_rng(seed).standard_normal(DIMENSION).astype(np.float32)


def hash_embedding(text: str) -> Vector:
    """A deterministic unit vector: the normalised sum of one random vector per word."""
    words = _WORDS.findall(text.lower()) or [text]
    total: Vector = np.zeros(DIMENSION, dtype=np.float32)
    for word in words:
        total += _word_vector(word)
    return (total / np.linalg.norm(total)).astype(np.float32)


def chunks_from_texts(
    texts: Sequence[str],
    *,
    start_key: int = 1,
    title: str = "Teller test bank",
    **metadata: Any,
) -> list[IndexedChunk]:
    """One chunk per text, keys `start_key`, `start_key + 1`, ...; `metadata` (for
    example `product="mortgage"`, `effective_until="2020-01-01"`) goes on every chunk."""
    return [
        IndexedChunk(
            key=key,
            doc_id=f"doc-{key}",
            version=1,
            ordinal=0,
            title=title,
            section_path=("Products", f"Section {key}"),
            text=text,
            context=title,
            metadata=dict(metadata),
            embedding=hash_embedding(f"{title}\n{text}"),
        )
        for key, text in enumerate(texts, start=start_key)
    ]


CORPUS = (
    "Our fixed rate mortgage keeps the same interest rate for the whole 30 year term.",
    "Savings accounts earn compound interest that is paid every month.",
    "Report a lost or stolen debit card right away by calling the card hotline.",
)


class RetrieverContract:
    """Tests every `IndexBackend` passes. Needs a `backend` fixture (see module doc)."""

    @pytest.fixture
    def make_chunks(self) -> ChunkFactory:
        return chunks_from_texts

    @staticmethod
    def embed(text: str) -> Vector:
        return hash_embedding(text)

    def search(
        self,
        backend: IndexBackend,
        query: str,
        *,
        mode: RetrievalMode = "hybrid",
        k: int = 10,
        filters: SearchFilters | None = None,
    ) -> list[Any]:
        request = SearchRequest(query=query, k=k, mode=mode, filters=filters or SearchFilters())
        return backend.search(request, None if mode == "bm25" else self.embed(query))

    # -- basics -----------------------------------------------------------------------

    @pytest.mark.parametrize("mode", MODES)
    def test_empty_index_returns_no_hits(self, backend: IndexBackend, mode: RetrievalMode) -> None:
        assert self.search(backend, "mortgage rates", mode=mode) == []
        assert backend.count() == 0
        assert backend.keys() == set()

    @pytest.mark.parametrize("mode", MODES)
    def test_upsert_then_search_finds_the_chunk(
        self, backend: IndexBackend, make_chunks: ChunkFactory, mode: RetrievalMode
    ) -> None:
        backend.upsert(make_chunks(CORPUS))
        hits = self.search(backend, "lost debit card", mode=mode)
        assert hits, f"{mode} search found nothing"
        assert hits[0].key == 3
        assert hits[0].text == CORPUS[2]

    def test_document_frequencies_count_chunks_holding_each_analysed_term(
        self, backend: IndexBackend, make_chunks: ChunkFactory
    ) -> None:
        backend.upsert(make_chunks(CORPUS))
        backend.flush()
        total, counts = backend.document_frequencies(["interest", "card", "mortgag", "zelle"])
        # "interest": the mortgage and savings chunks; "card" one chunk (twice in it);
        # "mortgag" is how "mortgage" is indexed; "zelle" is in no chunk.
        assert total == 3
        assert counts == {"interest": 2, "card": 1, "mortgag": 1, "zelle": 0}

    def test_hits_carry_the_chunk_fields(
        self, backend: IndexBackend, make_chunks: ChunkFactory
    ) -> None:
        [chunk] = make_chunks(
            ["Wire transfers leave the same business day."],
            start_key=7,
            product="payments",
            effective_from="2024-01-01",
        )
        backend.upsert([chunk])
        [hit] = self.search(backend, "wire transfers", mode="bm25")
        assert (hit.key, hit.doc_id, hit.version, hit.title) == (7, "doc-7", 1, chunk.title)
        assert hit.section_path == chunk.section_path
        assert hit.text == chunk.text
        assert dict(hit.metadata) == {"product": "payments", "effective_from": "2024-01-01"}

    @pytest.mark.parametrize("mode", MODES)
    def test_hits_carry_scores_and_ranks(
        self, backend: IndexBackend, make_chunks: ChunkFactory, mode: RetrievalMode
    ) -> None:
        backend.upsert(make_chunks(CORPUS))
        hits = self.search(backend, "interest rate", mode=mode)
        assert [hit.rank for hit in hits] == list(range(1, len(hits) + 1))
        scores = [hit.score for hit in hits]
        assert scores == sorted(scores, reverse=True)
        top = hits[0]
        if mode == "bm25":
            assert top.bm25_score is not None and top.dense_score is None
            assert top.score == pytest.approx(top.bm25_score)
        elif mode == "dense":
            assert top.dense_score is not None and top.bm25_score is None
            assert top.score == pytest.approx(top.dense_score)
            assert -1.0 <= top.dense_score <= 1.0 + 1e-6
        else:
            # Both legs return the best chunk for a query that matches its words.
            assert top.bm25_score is not None and top.dense_score is not None
        for hit in hits:
            assert hit.bm25_score is None or hit.bm25_score > 0

    @pytest.mark.parametrize("mode", MODES)
    def test_k_is_respected(
        self, backend: IndexBackend, make_chunks: ChunkFactory, mode: RetrievalMode
    ) -> None:
        backend.upsert(
            make_chunks([f"Branch {n} opens at nine for account services." for n in range(12)])
        )
        assert len(self.search(backend, "account services", mode=mode, k=3)) == 3
        assert len(self.search(backend, "account services", mode=mode, k=20)) == 12

    # -- writes -----------------------------------------------------------------------

    def test_upsert_of_the_same_key_replaces_the_chunk(
        self, backend: IndexBackend, make_chunks: ChunkFactory
    ) -> None:
        backend.upsert(make_chunks(["The zebra account has no monthly fee."], start_key=1))
        backend.upsert(make_chunks(["The giraffe account pays a loyalty bonus."], start_key=1))
        assert backend.count() == 1
        assert backend.keys() == {1}
        assert self.search(backend, "zebra", mode="bm25") == []
        for mode in MODES:
            [hit] = self.search(backend, "giraffe loyalty bonus", mode=mode)
            assert (hit.key, hit.text) == (1, "The giraffe account pays a loyalty bonus.")

    def test_delete_removes_chunks_from_every_leg(
        self, backend: IndexBackend, make_chunks: ChunkFactory
    ) -> None:
        backend.upsert(make_chunks(CORPUS))
        backend.delete([3])
        assert backend.keys() == {1, 2}
        assert backend.count() == 2
        for mode in MODES:
            assert 3 not in {hit.key for hit in self.search(backend, "lost debit card", mode=mode)}

    def test_deleting_unknown_keys_is_ignored(
        self, backend: IndexBackend, make_chunks: ChunkFactory
    ) -> None:
        backend.upsert(make_chunks(CORPUS))
        backend.delete([999, 1000])
        backend.delete([])
        assert backend.keys() == {1, 2, 3}

    def test_upsert_needs_embeddings_of_the_right_size(
        self, backend: IndexBackend, make_chunks: ChunkFactory
    ) -> None:
        [chunk] = make_chunks(["No vector here."])
        with pytest.raises(ValueError):
            backend.upsert([_replace_embedding(chunk, None)])
        with pytest.raises(ValueError):
            backend.upsert([_replace_embedding(chunk, np.ones(DIMENSION + 1, dtype=np.float32))])
        assert backend.count() == 0

    def test_dense_search_needs_the_query_vector(self, backend: IndexBackend) -> None:
        modes: tuple[RetrievalMode, ...] = ("dense", "hybrid")
        for mode in modes:
            with pytest.raises(ValueError):
                backend.search(SearchRequest(query="mortgage", mode=mode))

    def test_keys_and_count_follow_writes(
        self, backend: IndexBackend, make_chunks: ChunkFactory
    ) -> None:
        backend.upsert(make_chunks(CORPUS, start_key=10))
        backend.upsert(make_chunks(["Another chunk about branch hours."], start_key=20))
        assert backend.keys() == {10, 11, 12, 20}
        assert backend.count() == 4
        backend.flush()
        assert backend.count() == 4

    # -- filters ----------------------------------------------------------------------

    @pytest.mark.parametrize("mode", MODES)
    def test_product_filter_applies_to_every_leg(
        self, backend: IndexBackend, make_chunks: ChunkFactory, mode: RetrievalMode
    ) -> None:
        text = "The interest rate on this product changes with the market."
        backend.upsert(make_chunks([text, text], start_key=1, product="Mortgage"))
        backend.upsert(make_chunks([text, text], start_key=3, product="savings"))
        hits = self.search(
            backend, "interest rate", mode=mode, filters=SearchFilters(product="MORTGAGE")
        )
        assert {hit.key for hit in hits} == {1, 2}

    @pytest.mark.parametrize("mode", MODES)
    def test_document_type_filter_applies_to_every_leg(
        self, backend: IndexBackend, make_chunks: ChunkFactory, mode: RetrievalMode
    ) -> None:
        text = "Fees for international wire transfers."
        backend.upsert(make_chunks([text], start_key=1, document_type="faq"))
        backend.upsert(make_chunks([text], start_key=2, document_type="policy"))
        backend.upsert(make_chunks([text], start_key=3))
        hits = self.search(
            backend, "wire transfer fees", mode=mode, filters=SearchFilters(document_type="faq")
        )
        assert [hit.key for hit in hits] == [1]

    @pytest.mark.parametrize("mode", MODES)
    def test_valid_on_filter_drops_expired_and_future_chunks(
        self, backend: IndexBackend, make_chunks: ChunkFactory, mode: RetrievalMode
    ) -> None:
        today = dt.date.today()
        past, future = today - dt.timedelta(days=30), today + dt.timedelta(days=30)
        text = "The current CD rate for a 12 month term."
        backend.upsert(make_chunks([text], start_key=1, effective_until=past.isoformat()))
        backend.upsert(make_chunks([text], start_key=2))
        backend.upsert(
            make_chunks(
                [text],
                start_key=3,
                effective_from=past.isoformat(),
                effective_until=today.isoformat(),
            )
        )
        backend.upsert(make_chunks([text], start_key=4, effective_from=future.isoformat()))
        filters = SearchFilters(valid_on=today)
        assert {hit.key for hit in self.search(backend, "CD rate", mode=mode, filters=filters)} == {
            2,
            3,
        }
        everything = self.search(backend, "CD rate", mode=mode)
        assert {hit.key for hit in everything} == {1, 2, 3, 4}

    @pytest.mark.parametrize("mode", MODES)
    def test_filters_combine(
        self, backend: IndexBackend, make_chunks: ChunkFactory, mode: RetrievalMode
    ) -> None:
        text = "Early withdrawal penalties for certificates."
        backend.upsert(make_chunks([text], start_key=1, product="cd", document_type="faq"))
        backend.upsert(make_chunks([text], start_key=2, product="cd", document_type="policy"))
        backend.upsert(make_chunks([text], start_key=3, product="savings", document_type="faq"))
        filters = SearchFilters(product="cd", document_type="faq", valid_on=dt.date.today())
        assert [
            hit.key
            for hit in self.search(backend, "withdrawal penalty", mode=mode, filters=filters)
        ] == [1]


def _replace_embedding(chunk: IndexedChunk, embedding: Vector | None) -> IndexedChunk:
    from dataclasses import replace

    return replace(chunk, embedding=embedding)
