"""The embedded index passes the shared retriever contract."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from retrieval.embedded import EmbeddedIndex
from tests.contract.retriever_contract import DIMENSION, RetrieverContract


class TestEmbeddedIndexContract(RetrieverContract):
    @pytest.fixture
    def backend(self, tmp_path: Path) -> Iterator[EmbeddedIndex]:
        with EmbeddedIndex(tmp_path / "index", dimension=DIMENSION) as index:
            yield index


class TestEmbeddedIndexHnswContract(RetrieverContract):
    """The same contract with approximate (HNSW) search forced on."""

    @pytest.fixture
    def backend(self, tmp_path: Path) -> Iterator[EmbeddedIndex]:
        with EmbeddedIndex(tmp_path / "index", dimension=DIMENSION, exact_threshold=0) as index:
            yield index
