"""Operating the Elasticsearch backend: readiness, version and alias checks, and
`KnowledgeService.rebuild` streaming the SQL chunks into a new index version.

Uses the scripted HTTP node of `test_es_bodies` (the fake at the external boundary);
the database, the documents and the embedding model are real.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import Elasticsearch
from sqlalchemy.orm import Session, sessionmaker

from bot.api.routes.health import index_check
from bot.knowledge import KnowledgeService
from db import repository as repo
from retrieval import es_mapping
from retrieval.embedded import EmbeddedIndex
from retrieval.embedder import SentenceTransformerEmbedder
from retrieval.errors import BulkIndexingError, IndexUnavailableError
from retrieval.types import ParsedDocument, Section
from tests.elasticsearch.test_es_bodies import (
    ALIAS,
    FakeCluster,
    Request,
    ScriptedNode,
    _backend,
    _with_index,
)


@pytest.fixture
def cluster() -> FakeCluster:
    return FakeCluster().on("GET", "/", {"version": {"number": "8.15.3"}})


@pytest.fixture
def client(cluster: FakeCluster) -> Iterator[Elasticsearch]:
    node_class = type("Node", (ScriptedNode,), {"cluster": cluster})
    es = Elasticsearch("http://es.test:9200", node_class=node_class, max_retries=0)
    yield es
    es.close()


# -- pure checks ----------------------------------------------------------------------


def test_version_and_licence_problems() -> None:
    assert es_mapping.version_problem((8, 12, 0), rrf_retriever=False) is None
    assert "8.12 or later" in str(es_mapping.version_problem((8, 11, 4), rrf_retriever=False))
    assert "8.16 or later" in str(es_mapping.version_problem((8, 15, 0), rrf_retriever=True))
    assert es_mapping.version_problem((9, 0, 0), rrf_retriever=True) is None
    assert es_mapping.rrf_licence_problem("trial") is None
    assert "'basic' licence" in str(es_mapping.rrf_licence_problem("basic"))


def test_alias_problems() -> None:
    assert es_mapping.alias_problem(ALIAS, ["teller-chunks-v1"], plain_index=False) is None
    assert es_mapping.alias_problem(ALIAS, [], plain_index=False) is None
    assert "plain index" in str(es_mapping.alias_problem(ALIAS, [], plain_index=True))
    several = es_mapping.alias_problem(ALIAS, ["a-v1", "a-v2"], plain_index=False)
    assert "several indices (a-v1, a-v2)" in str(several)


def test_bulk_indexing_errors_are_index_errors() -> None:
    assert issubclass(BulkIndexingError, IndexUnavailableError)  # the API answers 503


# -- readiness ------------------------------------------------------------------------


def test_readiness_includes_the_cluster_health(cluster: FakeCluster, client: Elasticsearch) -> None:
    _with_index(cluster)
    check = index_check(_backend(client))
    assert check["status"] == "ok" and check["chunks"] == 3
    assert check["health"]["status"] == "yellow" and check["health"]["ok"] is True


def test_a_red_cluster_is_not_ready(cluster: FakeCluster, client: Elasticsearch) -> None:
    _with_index(cluster).on("GET", "/_cluster/health", {"status": "red"})
    check = index_check(_backend(client))
    assert check["status"] == f"unavailable: alias '{ALIAS}' not ready (status red)"
    assert check["health"]["ok"] is False


def test_a_missing_alias_is_not_ready(cluster: FakeCluster, client: Elasticsearch) -> None:
    cluster.on("GET", f"/_alias/{ALIAS}", {"error": "alias missing", "status": 404}, status=404)
    cluster.on("HEAD", f"/{ALIAS}", status=404)
    check = index_check(_backend(client))
    assert check["status"].startswith("unavailable: ") and check["chunks"] == 0


# -- rebuild from SQL -----------------------------------------------------------------


def _ack_bulk(request: Request) -> dict[str, Any]:
    items = [
        {"index": {"_id": line["index"]["_id"], "status": 201}}
        for line in request.body
        if set(line) == {"index"}
    ]
    return {"errors": False, "items": items}


def _scan_answer(keys: list[int]) -> dict[str, Any]:
    return {"hits": {"hits": [{"_id": str(k), "sort": [k]} for k in keys]}}


def test_rebuild_streams_sql_chunks_into_a_new_version_and_swaps_the_alias(
    cluster: FakeCluster,
    client: Elasticsearch,
    session_factory: sessionmaker[Session],
    embedder: SentenceTransformerEmbedder,
    tmp_path: Path,
) -> None:
    docs = [
        ParsedDocument(
            title=title, sections=(Section((), text),), metadata={}, doc_id=doc_id, source=doc_id
        )
        for doc_id, title, text in [
            ("wires", "Wire fees", "International wires cost $45."),
            ("cards", "Lost cards", "Freeze a lost card in the app."),
        ]
    ]
    with EmbeddedIndex(tmp_path / "index", dimension=embedder.dimension).open() as embedded:
        KnowledgeService(
            session_factory=session_factory, index=embedded, embedder=embedder
        ).ingest_documents(docs)
    with session_factory() as session:
        keys = sorted(repo.live_chunk_keys(session))

    cluster.on("GET", f"/_alias/{ALIAS}", {"teller-chunks-v1": {"aliases": {ALIAS: {}}}})
    cluster.on("PUT", rf"/{ALIAS}-v\d+t\d+", {"acknowledged": True})
    cluster.on("PUT", rf"/{ALIAS}-v\d+t\d+/_settings", {"acknowledged": True})
    cluster.on("POST", rf"/{ALIAS}-v\d+t\d+/_refresh", {"_shards": {}})
    cluster.on("PUT", "/_bulk", _ack_bulk)
    cluster.on("POST", "/_aliases", {"acknowledged": True})
    cluster.on("DELETE", "/teller-chunks-v1", {"acknowledged": True})
    cluster.on("POST", f"/{ALIAS}/_search", _scan_answer(keys))  # reconcile: all present
    cluster.on("POST", f"/{ALIAS}/_refresh", {"_shards": {}})
    backend = _backend(client, dimension=embedder.dimension)
    service = KnowledgeService(session_factory=session_factory, index=backend, embedder=embedder)

    report = service.rebuild(batch_size=1)

    assert (report.added, report.removed, report.total) == (len(keys), 0, len(keys))
    [bulk] = cluster.sent("PUT", "/_bulk")
    new_index = bulk.body[0]["index"]["_index"]
    assert [int(line["index"]["_id"]) for line in bulk.body[::2]] == keys
    assert bulk.body[1]["embedding"] and len(bulk.body[1]["embedding"]) == embedder.dimension
    [swap] = cluster.sent("POST", "/_aliases")
    assert swap.body == {
        "actions": es_mapping.alias_swap_actions(ALIAS, new_index, ["teller-chunks-v1"])
    }
