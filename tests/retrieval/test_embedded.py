"""Embedded-index behaviour beyond the shared contract: persistence, locking, safety."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from retrieval.embedded import EmbeddedIndex
from retrieval.errors import IndexUnavailableError
from retrieval.types import IndexedChunk, SearchRequest

DIM = 16


def _vector(text: str) -> np.ndarray:
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
    v = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
    return v / np.linalg.norm(v)


def _chunk(key: int, text: str, **metadata: str) -> IndexedChunk:
    return IndexedChunk(
        key=key,
        doc_id=f"doc-{key}",
        version=1,
        ordinal=0,
        title=f"Title {key}",
        section_path=("Section",),
        text=text,
        context="",
        metadata=metadata,
        embedding=_vector(text),
    )


@pytest.fixture
def index_dir(tmp_path: Path) -> Path:
    return tmp_path / "index"


def test_survives_restart_without_reembedding(index_dir: Path) -> None:
    with EmbeddedIndex(index_dir, dimension=DIM) as index:
        index.upsert([_chunk(1, "overdraft fees are waived"), _chunk(2, "wire transfer cut-off")])
    with EmbeddedIndex(index_dir, dimension=DIM) as index:
        assert index.keys() == {1, 2}
        hits = index.search(
            SearchRequest(query="wire transfer", k=1), _vector("wire transfer cut-off")
        )
        assert hits[0].key == 2
        assert hits[0].bm25_score is not None and hits[0].dense_score is not None


def test_missing_vector_snapshot_is_reported_for_reconciliation(index_dir: Path) -> None:
    index = EmbeddedIndex(index_dir, dimension=DIM).open()
    index.upsert([_chunk(1, "savings account interest")])
    # Simulate a crash: the BM25 side committed, the vector snapshot never got written.
    index._vectors_dirty = False
    index.close()
    with EmbeddedIndex(index_dir, dimension=DIM) as reopened:
        assert reopened.count() == 1
        assert reopened.keys() == set()  # not in both structures: the service re-adds it


def test_second_process_cannot_open_the_same_directory(index_dir: Path) -> None:
    with (
        EmbeddedIndex(index_dir, dimension=DIM),
        pytest.raises(IndexUnavailableError, match="in use by another Teller process"),
    ):
        EmbeddedIndex(index_dir, dimension=DIM).open()


def test_dimension_mismatch_is_a_clear_error(index_dir: Path) -> None:
    with EmbeddedIndex(index_dir, dimension=DIM):
        pass
    with pytest.raises(IndexUnavailableError, match="teller reindex"):
        EmbeddedIndex(index_dir, dimension=DIM * 2).open()


def test_stemming_and_synonyms_reach_bm25(index_dir: Path) -> None:
    with EmbeddedIndex(index_dir, dimension=DIM) as index:
        index.upsert(
            [
                _chunk(1, "The annual percentage rate includes lender fees."),
                _chunk(2, "Checking accounts have no overdraft fee."),
            ]
        )
        hits = index.search(SearchRequest(query="what is the APR", k=2, mode="bm25"))
        assert [h.key for h in hits] == [1]
        hits = index.search(SearchRequest(query="overdrafts", k=2, mode="bm25"))
        assert [h.key for h in hits] == [2]


def test_query_syntax_characters_are_plain_text(index_dir: Path) -> None:
    with EmbeddedIndex(index_dir, dimension=DIM) as index:
        index.upsert([_chunk(1, "Fees: $25 (domestic) AND $45 (international)")])
        hits = index.search(SearchRequest(query='fees: "AND" (OR) -NOT [25] ^2', k=3, mode="bm25"))
        assert [h.key for h in hits] == [1]


def test_upsert_rejects_chunks_without_or_with_wrong_embeddings(index_dir: Path) -> None:
    with EmbeddedIndex(index_dir, dimension=DIM) as index:
        bad = IndexedChunk(
            key=1,
            doc_id="d",
            version=1,
            ordinal=0,
            title="",
            section_path=(),
            text="x",
            context="",
            metadata={},
            embedding=None,
        )
        with pytest.raises(ValueError, match="no embedding"):
            index.upsert([bad])
        wrong = _chunk(2, "y")
        wrong = IndexedChunk(
            **{
                **{f: getattr(wrong, f) for f in wrong.__slots__},
                "embedding": np.ones(DIM + 1, dtype=np.float32),
            }
        )
        with pytest.raises(ValueError, match="expected"):
            index.upsert([wrong])
        assert index.count() == 0


def test_search_needs_a_vector_for_dense_modes(index_dir: Path) -> None:
    with (
        EmbeddedIndex(index_dir, dimension=DIM) as index,
        pytest.raises(ValueError, match="query vector"),
    ):
        index.search(SearchRequest(query="x", k=1, mode="hybrid"))
