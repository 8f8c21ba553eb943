"""The bounded text → vector cache shared by query and sentence embedding."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from retrieval.embedder import SentenceTransformerEmbedder
from retrieval.types import Matrix
from retrieval.vector_cache import VectorCache


class _Counting:
    """Embeds a text as [len(text), number of calls so far]: a cached row keeps its call."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, texts: Sequence[str]) -> Matrix:
        self.calls.append(list(texts))
        n = len(self.calls)
        return np.array([[len(t), n] for t in texts], dtype=np.float32).reshape(-1, 2)


def test_only_missing_texts_are_embedded_once_and_rows_keep_the_order() -> None:
    cache, embed = VectorCache(10), _Counting()
    first = cache.vectors(["a", "bb", "a"], embed)
    assert embed.calls == [["a", "bb"]]
    assert first.tolist() == [[1, 1], [2, 1], [1, 1]]
    second = cache.vectors(["ccc", "bb"], embed)
    assert embed.calls[-1] == ["ccc"]
    assert second.tolist() == [[3, 2], [2, 1]]


def test_the_least_recently_used_text_is_forgotten_first() -> None:
    cache, embed = VectorCache(2), _Counting()
    cache.vectors(["a", "b"], embed)
    cache.vectors(["a"], embed)  # "b" is now the oldest
    cache.vectors(["c"], embed)
    assert len(cache) == 2
    cache.vectors(["a", "b"], embed)
    assert embed.calls[-1] == ["b"]


def test_size_zero_remembers_nothing_and_negative_is_refused() -> None:
    cache, embed = VectorCache(0), _Counting()
    cache.vectors(["a"], embed)
    cache.vectors(["a"], embed)
    assert embed.calls == [["a"], ["a"]] and len(cache) == 0
    with pytest.raises(ValueError, match="negative"):
        VectorCache(-1)


def test_callers_cannot_change_a_cached_vector() -> None:
    cache, embed = VectorCache(4), _Counting()
    cache.vectors(["a"], embed)[0] *= 100
    assert cache.vectors(["a"], embed).tolist() == [[1, 1]]


def test_no_texts_gives_an_empty_matrix_from_the_model() -> None:
    assert VectorCache(4).vectors([], _Counting()).shape == (0, 2)


@pytest.mark.slow
def test_the_embedder_embeds_a_repeated_query_once(
    embedder: SentenceTransformerEmbedder,
) -> None:
    counted: list[int] = []
    real = embedder.embed_documents

    class Watching(SentenceTransformerEmbedder):
        def embed_documents(self, texts: Sequence[str]) -> Matrix:
            counted.append(len(texts))
            return real(texts)

    watching = Watching(embedder.path, query_cache_size=8)
    first = watching.embed_query("What is the APY on a 12-month CD?")
    again = watching.embed_query("What is the APY on a 12-month CD?")
    assert counted == [1]
    np.testing.assert_array_equal(first, again)
    np.testing.assert_allclose(first, real(["What is the APY on a 12-month CD?"])[0], atol=1e-6)
    with pytest.raises(ValueError, match="query_cache_size"):
        SentenceTransformerEmbedder(embedder.path, query_cache_size=-1)
