"""The shared retriever contract, plus index life-cycle tests, against a real cluster.

Runs only when TELLER_ELASTICSEARCH_URL names a cluster (with TELLER_ELASTICSEARCH_API_KEY
or _USERNAME/_PASSWORD and _CA_CERTS as needed), for example the one in
docker-compose.yml:

    TELLER_ELASTICSEARCH_URL=https://localhost:9200 TELLER_ELASTICSEARCH_USERNAME=elastic \
    TELLER_ELASTICSEARCH_PASSWORD=... TELLER_ELASTICSEARCH_CA_CERTS=./http_ca.crt \
    .venv/bin/pytest tests/elasticsearch -m elasticsearch

Every test works on its own uniquely named alias and deletes its indices afterwards.
The `rrf_retriever` variant is skipped when the cluster's licence lacks RRF.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from bot.settings import Settings
from retrieval.elasticsearch import ElasticsearchFusion, ElasticsearchIndex, build_client
from retrieval.errors import IndexUnavailableError
from retrieval.index_transfer import export_index, import_index
from retrieval.types import SearchRequest
from tests.contract.retriever_contract import (
    CORPUS,
    DIMENSION,
    RetrieverContract,
    chunks_from_texts,
    hash_embedding,
)

pytestmark = [
    pytest.mark.elasticsearch,
    pytest.mark.skipif(
        not os.environ.get("TELLER_ELASTICSEARCH_URL"),
        reason="no Elasticsearch cluster: set TELLER_ELASTICSEARCH_URL (and credentials) to run",
    ),
    # Clusters with security off add this warning to every response.
    pytest.mark.filterwarnings(
        "ignore:Elasticsearch built-in security features are not enabled"
        ":elasticsearch.ElasticsearchWarning"
    ),
]


@pytest.fixture(scope="module")
def es_client() -> Iterator[Elasticsearch]:
    settings = Settings(backend="elasticsearch", embedding_model="unused")
    client = build_client(settings)
    yield client
    client.close()


def _make_index(
    client: Elasticsearch, fusion: ElasticsearchFusion = "client"
) -> ElasticsearchIndex:
    return ElasticsearchIndex(
        client,
        alias=f"teller-test-{uuid.uuid4().hex[:12]}",
        dimension=DIMENSION,
        fusion=fusion,
    )


def _drop(index: ElasticsearchIndex) -> None:
    # Explicit names: clusters refuse wildcard deletes (action.destructive_requires_name).
    client = index.client
    names = sorted(client.indices.get(index=f"{index.alias}-v*", allow_no_indices=True).body)
    if names:
        client.indices.delete(index=",".join(names), ignore_unavailable=True)


class TestElasticsearchContract(RetrieverContract):
    @pytest.fixture(params=["client", "rrf_retriever"])
    def backend(
        self, request: pytest.FixtureRequest, es_client: Elasticsearch
    ) -> Iterator[ElasticsearchIndex]:
        index = _make_index(es_client, request.param)
        try:
            index.ensure_index()
        except IndexUnavailableError as exc:
            if request.param == "rrf_retriever" and "rrf" in str(exc):
                pytest.skip(f"this cluster cannot run the rrf retriever: {exc}")
            raise
        try:
            yield index
        finally:
            _drop(index)


class TestElasticsearchLifecycle:
    @pytest.fixture
    def index(self, es_client: Elasticsearch) -> Iterator[ElasticsearchIndex]:
        index = _make_index(es_client)
        try:
            yield index
        finally:
            _drop(index)

    def test_ensure_index_creates_a_versioned_index_behind_the_alias(
        self, index: ElasticsearchIndex
    ) -> None:
        name = index.ensure_index()
        assert name.startswith(f"{index.alias}-v")
        assert index.ensure_index() == name  # idempotent
        assert index.health()["ok"] is True

    def test_a_mapping_for_another_dimension_is_refused(self, index: ElasticsearchIndex) -> None:
        index.ensure_index()
        other = ElasticsearchIndex(index.client, alias=index.alias, dimension=768, fusion="client")
        with pytest.raises(IndexUnavailableError, match="768"):
            other.ensure_index()

    def test_reindex_swaps_the_alias_and_drops_the_old_version(
        self, index: ElasticsearchIndex
    ) -> None:
        first = index.ensure_index()
        index.upsert(chunks_from_texts(CORPUS))
        second = index.reindex(
            chunks_from_texts(["Mobile deposits post the next business day."], start_key=9)
        )
        assert second != first
        assert index.keys() == {9}
        assert not index.client.indices.exists(index=first)
        [hit] = index.search(SearchRequest(query="mobile deposit", mode="bm25"))
        assert hit.key == 9

    def test_export_then_import_round_trips_chunks(
        self, index: ElasticsearchIndex, tmp_path: Path
    ) -> None:
        index.ensure_index()
        index.upsert(chunks_from_texts(CORPUS))
        summary = export_index(
            index, tmp_path / "chunks.jsonl", embedder="hash", dimension=DIMENSION
        )
        assert summary.count == 3
        target = _make_index(index.client)
        try:
            target.ensure_index()
            import_index(tmp_path / "chunks.jsonl", target)
            assert target.keys() == {1, 2, 3}
            query = "lost debit card"
            hits = target.search(SearchRequest(query=query, mode="dense"), hash_embedding(query))
            assert hits[0].key == 3
        finally:
            _drop(target)

    def test_synonyms_match_the_expanded_phrase(self, index: ElasticsearchIndex) -> None:
        index.ensure_index()
        index.upsert(
            chunks_from_texts(["A home equity line of credit lets you borrow against your house."])
        )
        [hit] = index.search(SearchRequest(query="HELOC", mode="bm25"))
        assert hit.key == 1

    def test_unreachable_cluster_is_reported_clearly(self) -> None:
        settings = Settings(
            backend="elasticsearch",
            embedding_model="unused",
            elasticsearch_url="http://127.0.0.1:9",
            elasticsearch_timeout_s=1,
        )
        index = ElasticsearchIndex.from_settings(settings, DIMENSION, alias="teller-unreachable")
        with pytest.raises(IndexUnavailableError, match="TELLER_ELASTICSEARCH_URL"):
            index.ensure_index()
        assert index.health()["ok"] is False
        index.close()
