"""Unit tests of the Elasticsearch backend without a server.

Two layers: the pure functions that build mappings, search bodies, bulk actions and
alias actions; and `ElasticsearchIndex` driving the real `elasticsearch` client whose
HTTP node is replaced by `ScriptedNode` — a fake at the external boundary that records
each request and answers from canned responses shaped like the server's.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import numpy as np
import pytest
from elastic_transport import ApiResponseMeta, BaseNode, HttpHeaders
from elastic_transport import ConnectionError as TransportConnectionError
from elasticsearch import Elasticsearch
from pydantic import SecretStr

from bot.settings import Settings
from retrieval import es_mapping, es_queries, fusion
from retrieval.elasticsearch import (
    BulkIndexingError,
    CompatibleWith8Transport,
    ElasticsearchIndex,
    build_client,
)
from retrieval.errors import DocumentParseError, IndexUnavailableError
from retrieval.index_transfer import export_index, import_index, verify_index_file
from retrieval.synonyms import FINANCIAL_SYNONYMS, synonym_groups
from retrieval.types import IndexBackend, IndexedChunk, SearchFilters, SearchRequest
from tests.contract.retriever_contract import CORPUS, chunks_from_texts, hash_embedding

DIM = 384
ALIAS = "teller-chunks"
VECTOR = hash_embedding("mortgage rates")

# -- synonyms -------------------------------------------------------------------------


def test_synonym_rules_are_solr_equivalences_without_shared_phrases() -> None:
    groups = synonym_groups()
    assert len(groups) == len(FINANCIAL_SYNONYMS)
    assert ("apr", "annual percentage rate") in groups
    assert ("heloc", "home equity line of credit") in groups
    phrases = [phrase for group in groups for phrase in group]
    assert len(phrases) == len(set(phrases)), "a phrase in two rules would merge them"
    for rule in FINANCIAL_SYNONYMS:
        assert "=>" not in rule and rule == rule.lower()
        assert re.fullmatch(r"[a-z0-9 ]+(, [a-z0-9 ]+)+", rule), rule


# -- mapping --------------------------------------------------------------------------


def test_index_body_maps_every_field_and_the_vector() -> None:
    body = es_mapping.index_body(DIM, alias=ALIAS)
    props = body["mappings"]["properties"]
    assert body["mappings"]["dynamic"] == "strict"
    assert props["embedding"] == {
        "type": "dense_vector",
        "dims": DIM,
        "index": True,
        "similarity": "cosine",
        "index_options": {"type": "int8_hnsw", "m": 16, "ef_construction": 100},
    }
    assert props["content"]["analyzer"] == "teller_text"
    assert props["content"]["search_analyzer"] == "teller_text_search"
    assert props["text"]["copy_to"] == props["context"]["copy_to"] == "content"
    for keyword in ("product", "document_type"):
        assert props[keyword] == {"type": "keyword", "normalizer": "teller_lowercase"}
    assert props["effective_from"]["type"] == props["effective_until"]["type"] == "date"
    assert props["metadata"] == {"type": "object", "enabled": False}
    assert body["aliases"] == {ALIAS: {"is_write_index": True}}
    assert body["mappings"]["_meta"]["teller"]["dimension"] == DIM
    assert es_mapping.mapping_problems(body["mappings"], DIM) == []


def test_synonyms_are_applied_at_search_time_before_stop_words() -> None:
    analysis = es_mapping.index_body(DIM)["settings"]["analysis"]
    synonyms = analysis["filter"]["teller_synonyms"]
    assert synonyms["type"] == "synonym_graph"
    assert synonyms["synonyms"] == list(FINANCIAL_SYNONYMS)
    search_chain = analysis["analyzer"]["teller_text_search"]["filter"]
    index_chain = analysis["analyzer"]["teller_text"]["filter"]
    assert "teller_synonyms" not in index_chain
    assert search_chain.index("teller_synonyms") < search_chain.index("teller_stop")
    assert [f for f in search_chain if f != "teller_synonyms"] == index_chain
    assert analysis["filter"]["teller_stemmer"] == {"type": "stemmer", "language": "porter2"}


def test_bulk_load_settings_are_undone_by_serving_settings() -> None:
    loading = es_mapping.index_body(DIM, bulk_load=True, replicas=2)["settings"]["index"]
    assert loading == {"number_of_shards": 1, "number_of_replicas": 0, "refresh_interval": "-1"}
    assert es_mapping.serving_settings(2) == {
        "index": {"refresh_interval": None, "number_of_replicas": 2}
    }
    serving = es_mapping.index_body(DIM, replicas=2)["settings"]["index"]
    assert serving == {"number_of_shards": 1, "number_of_replicas": 2}


def test_mapping_problems_name_what_differs() -> None:
    mapping = es_mapping.mappings(768)
    problems = es_mapping.mapping_problems(mapping, DIM)
    assert problems == [
        f"'embedding' holds 768-dimensional vectors but the embedding model makes {DIM}"
    ]
    del mapping["properties"]["product"]
    mapping["properties"]["content"] = {"type": "keyword"}
    problems = es_mapping.mapping_problems(mapping, 768)
    assert "field 'product' is missing" in problems
    assert "field 'content' is 'keyword', expected 'text'" in problems
    assert es_mapping.mapping_problems({"properties": {}}, DIM)[0].startswith(
        "it was not created by Teller"
    )


def test_index_names() -> None:
    moment = dt.datetime(2025, 1, 2, 3, 4, 5, 123456, tzinfo=dt.UTC)
    assert es_mapping.versioned_index_name(ALIAS, moment) == "teller-chunks-v20250102t030405123456"
    later = es_mapping.versioned_index_name(ALIAS, moment + dt.timedelta(microseconds=1))
    assert later > es_mapping.versioned_index_name(ALIAS, moment)
    for bad in ("Teller", "_teller", "tel ler", "a*b", ""):
        with pytest.raises(ValueError):
            es_mapping.validate_index_name(bad)
    with pytest.raises(ValueError):
        ElasticsearchIndex(
            Elasticsearch("http://es.test:9200"), alias="Bad", dimension=DIM, fusion="client"
        )


def test_alias_swap_is_one_atomic_list_of_actions() -> None:
    actions = es_mapping.alias_swap_actions(ALIAS, "new", ["old-2", "old-1", "new"])
    assert actions == [
        {"add": {"index": "new", "alias": ALIAS, "is_write_index": True}},
        {"remove": {"index": "old-1", "alias": ALIAS}},
        {"remove": {"index": "old-2", "alias": ALIAS}},
    ]
    replacing = es_mapping.alias_swap_actions(ALIAS, "new", [], replace_concrete_index=True)
    assert replacing[1] == {"remove_index": {"index": ALIAS}}


# -- search bodies --------------------------------------------------------------------

FILTERS = SearchFilters(product="Mortgage", document_type="FAQ", valid_on=dt.date(2025, 3, 1))
EXPECTED_CLAUSES = [
    {"term": {"product": "mortgage"}},
    {"term": {"document_type": "faq"}},
    {
        "bool": {
            "must_not": [
                {"range": {"effective_from": {"gt": "2025-03-01"}}},
                {"range": {"effective_until": {"lt": "2025-03-01"}}},
            ]
        }
    },
]


def test_filter_clauses() -> None:
    assert es_queries.filter_clauses(SearchFilters()) == []
    assert es_queries.filter_clauses(FILTERS) == EXPECTED_CLAUSES


def test_both_legs_get_the_same_filters() -> None:
    bm25 = es_queries.bm25_body("apr on a cd", FILTERS, 100)
    knn = es_queries.knn_body(VECTOR, FILTERS, 100)
    assert bm25["query"] == {
        "bool": {
            "must": [{"match": {"content": {"query": "apr on a cd"}}}],
            "filter": EXPECTED_CLAUSES,
        }
    }
    assert knn["knn"]["filter"] == {"bool": {"filter": EXPECTED_CLAUSES}}
    assert knn["knn"]["k"] == knn["size"] == bm25["size"] == 100
    assert knn["knn"]["num_candidates"] == 200
    assert len(knn["knn"]["query_vector"]) == DIM
    assert knn["knn"]["field"] == "embedding"
    assert "embedding" not in bm25["_source"] and "embedding" not in knn["_source"]
    unfiltered = es_queries.knn_body(VECTOR, SearchFilters(), 10)
    assert "filter" not in unfiltered["knn"] and unfiltered["knn"]["num_candidates"] == 100
    assert "filter" not in es_queries.bm25_body("x", SearchFilters(), 10)["query"]["bool"]


def test_hybrid_msearch_runs_both_legs_in_one_request() -> None:
    body = es_queries.hybrid_msearch_body("apr", VECTOR, FILTERS, 50)
    assert body[0] == body[2] == {}
    assert body[1] == es_queries.bm25_body("apr", FILTERS, 50)
    assert body[3] == es_queries.knn_body(VECTOR, FILTERS, 50)


def test_rrf_retriever_body() -> None:
    body = es_queries.rrf_retriever_body("apr", VECTOR, FILTERS, k=5, window=100, rank_constant=60)
    rrf = body["retriever"]["rrf"]
    assert (body["size"], body["explain"], rrf["rank_window_size"], rrf["rank_constant"]) == (
        5,
        True,
        100,
        60,
    )
    standard, knn = rrf["retrievers"]
    assert standard == {"standard": {"query": es_queries.bm25_query("apr", FILTERS)}}
    assert knn == {"knn": es_queries.knn_clause(VECTOR, FILTERS, 100)}
    with pytest.raises(ValueError):
        es_queries.rrf_retriever_body("apr", VECTOR, FILTERS, k=10, window=5, rank_constant=60)


# -- documents and responses ----------------------------------------------------------


def test_chunk_document_and_bulk_actions() -> None:
    [chunk] = chunks_from_texts(
        ["CD rates"],
        start_key=42,
        product="CD",
        effective_from=dt.date(2025, 1, 1),
        effective_until="2025-12-31T00:00:00",
    )
    doc = es_queries.chunk_document(chunk)
    assert doc["product"] == "cd" and "document_type" not in doc
    assert (doc["effective_from"], doc["effective_until"]) == ("2025-01-01", "2025-12-31")
    assert doc["metadata"]["effective_from"] == "2025-01-01"  # JSON-safe, like the embedded index
    assert doc["embedding"] == pytest.approx(chunk.embedding.tolist())  # type: ignore[union-attr]
    assert es_queries.index_action(ALIAS, chunk) == {
        "_op_type": "index",
        "_index": ALIAS,
        "_id": "42",
        "_source": doc,
    }
    assert es_queries.delete_action(ALIAS, 42) == {
        "_op_type": "delete",
        "_index": ALIAS,
        "_id": "42",
    }
    with pytest.raises(ValueError):
        es_queries.iso_day("next tuesday")
    rebuilt = es_queries.chunk_from_source(42, doc)
    assert rebuilt.text == chunk.text and rebuilt.context == chunk.context
    assert np.allclose(rebuilt.embedding, chunk.embedding)  # type: ignore[arg-type]


def test_dense_scores_are_turned_back_into_cosine() -> None:
    response = {"hits": {"hits": [{"_id": "1", "_score": 0.9}, {"_id": "2", "_score": 0.5}]}}
    assert es_queries.leg_scores(response, dense=True) == pytest.approx({1: 0.8, 2: 0.0})
    assert es_queries.leg_scores(response, dense=False) == {1: 0.9, 2: 0.5}


def _explained(bm25: tuple[int, float] | None, dense: tuple[int, float] | None) -> dict[str, Any]:
    """An `rrf` hit explanation shaped like Elasticsearch's (see its rrf REST tests)."""

    def leg(found: tuple[int, float] | None) -> dict[str, Any]:
        if found is None:
            return {
                "value": 0,
                "description": "rrf score: [0], result not found in query",
                "details": [],
            }
        rank, score = found
        return {
            "value": rank,
            "description": "rrf score",
            "details": [{"value": score, "details": []}],
        }

    return {"_explanation": {"value": 0.03, "details": [leg(bm25), leg(dense)]}}


def test_rrf_leg_scores_come_from_the_explanation() -> None:
    assert es_queries.rrf_leg_scores(_explained((1, 7.5), (2, 0.75))) == (7.5, pytest.approx(0.5))
    assert es_queries.rrf_leg_scores(_explained(None, (1, 1.0))) == (None, 1.0)
    assert es_queries.rrf_leg_scores({"_explanation": {"details": "odd"}}) == (None, None)
    assert es_queries.rrf_leg_scores({}) == (None, None)


# -- the backend against a scripted HTTP node -----------------------------------------


@dataclass
class Request:
    method: str
    target: str
    headers: HttpHeaders
    body: Any

    @property
    def path(self) -> str:
        return self.target.partition("?")[0]

    @property
    def query(self) -> str:
        return self.target.partition("?")[2]


Answer = dict[str, Any] | Callable[[Request], dict[str, Any]]


@dataclass
class Route:
    method: str
    pattern: str
    answers: list[tuple[int, Answer]]
    error: Exception | None = None


@dataclass
class FakeCluster:
    """Canned answers per (method, path regex); each route replays its answers in order
    and repeats the last one."""

    routes: list[Route] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)

    def on(self, method: str, pattern: str, *answers: Answer, status: int = 200) -> FakeCluster:
        self.routes.insert(
            0, Route(method, pattern, [(status, a) for a in answers] or [(status, {})])
        )
        return self

    def fail(self, method: str, pattern: str, error: Exception) -> FakeCluster:
        self.routes.insert(0, Route(method, pattern, [], error))
        return self

    def answer(self, request: Request) -> tuple[int, dict[str, Any]]:
        self.requests.append(request)
        for route in self.routes:
            if route.method == request.method and re.fullmatch(route.pattern, request.path):
                if route.error is not None:
                    raise route.error
                status, answer = (
                    route.answers[0] if len(route.answers) == 1 else route.answers.pop(0)
                )
                return status, answer(request) if callable(answer) else answer
        return 404, {
            "error": {"type": "index_not_found_exception", "reason": "no such index"},
            "status": 404,
        }

    def sent(self, method: str, pattern: str) -> list[Request]:
        return [r for r in self.requests if r.method == method and re.fullmatch(pattern, r.path)]


def _decode(body: bytes | None) -> Any:
    if not body:
        return None
    text = body.decode()
    try:
        return json.loads(text)
    except json.JSONDecodeError:  # NDJSON (_bulk, _msearch)
        return [json.loads(line) for line in text.splitlines() if line]


class NodeResponse(NamedTuple):
    """What a node returns to the transport (elastic_transport's NodeApiResponse)."""

    meta: ApiResponseMeta
    body: bytes


class ScriptedNode(BaseNode):
    """An `elastic_transport` node that answers from a `FakeCluster` instead of HTTP."""

    cluster: ClassVar[FakeCluster]

    def perform_request(  # type: ignore[override]
        self,
        method: str,
        target: str,
        body: bytes | None = None,
        headers: HttpHeaders | None = None,
        **_: Any,
    ) -> NodeResponse:
        status, payload = self.cluster.answer(
            Request(method, target, HttpHeaders(headers or {}), _decode(body))
        )
        meta = ApiResponseMeta(
            status=status,
            http_version="1.1",
            headers=HttpHeaders(
                {"x-elastic-product": "Elasticsearch", "content-type": "application/json"}
            ),
            duration=0.0,
            node=self.config,
        )
        return NodeResponse(meta, b"" if method == "HEAD" else json.dumps(payload).encode())


@pytest.fixture
def cluster() -> FakeCluster:
    return FakeCluster().on(
        "GET", "/", {"version": {"number": "8.15.3"}, "tagline": "You Know, for Search"}
    )


@pytest.fixture
def client(cluster: FakeCluster) -> Iterator[Elasticsearch]:
    node_class = type("Node", (ScriptedNode,), {"cluster": cluster})
    es = Elasticsearch(
        "http://es.test:9200",
        node_class=node_class,
        transport_class=CompatibleWith8Transport,
        max_retries=0,
    )
    yield es
    es.close()


def _backend(client: Elasticsearch, **options: Any) -> ElasticsearchIndex:
    settings: dict[str, Any] = {
        "alias": ALIAS,
        "dimension": DIM,
        "fusion": "client",
        "bulk_initial_backoff": 0.0,
    }
    return ElasticsearchIndex(client, **(settings | options))


def _with_index(
    cluster: FakeCluster, name: str = "teller-chunks-v1", dimension: int = DIM
) -> FakeCluster:
    return (
        cluster.on("GET", f"/_alias/{ALIAS}", {name: {"aliases": {ALIAS: {}}}})
        .on("GET", f"/{name}/_mapping", {name: {"mappings": es_mapping.mappings(dimension)}})
        .on("GET", "/_cluster/health", {"status": "yellow"})
        .on("POST", f"/{ALIAS}/_count", {"count": 3})
    )


def test_the_backend_implements_the_index_protocol(client: Elasticsearch) -> None:
    assert isinstance(_backend(client), IndexBackend)


def test_requests_ask_for_version_8_compatible_responses(
    cluster: FakeCluster, client: Elasticsearch
) -> None:
    _backend(client).server_version()
    [info] = cluster.requests
    assert info.headers["accept"] == "application/vnd.elasticsearch+json; compatible-with=8"


def test_ensure_index_creates_a_versioned_index_and_alias(
    cluster: FakeCluster, client: Elasticsearch
) -> None:
    cluster.on("GET", f"/_alias/{ALIAS}", {"error": "alias missing", "status": 404}, status=404)
    cluster.on("HEAD", f"/{ALIAS}", status=404).on(
        "PUT", rf"/{ALIAS}-v\d+t\d+", {"acknowledged": True}
    )
    name = _backend(client).ensure_index()
    [create] = cluster.sent("PUT", rf"/{ALIAS}-v.*")
    assert create.path == f"/{name}"
    assert create.body == es_mapping.index_body(DIM, alias=ALIAS)


def test_ensure_index_accepts_a_fitting_index(cluster: FakeCluster, client: Elasticsearch) -> None:
    _with_index(cluster)
    assert _backend(client).ensure_index() == "teller-chunks-v1"
    assert not cluster.sent("PUT", ".*")


def test_ensure_index_refuses_another_dimension(
    cluster: FakeCluster, client: Elasticsearch
) -> None:
    _with_index(cluster, dimension=768)
    with pytest.raises(IndexUnavailableError, match=r"768-dimensional.*teller reindex"):
        _backend(client).ensure_index()


def test_ensure_index_refuses_old_clusters_and_missing_rrf_licence(
    cluster: FakeCluster, client: Elasticsearch
) -> None:
    _with_index(cluster).on("GET", "/_license", {"license": {"type": "basic"}})
    with pytest.raises(IndexUnavailableError, match=r"needs Elasticsearch 8\.16"):
        _backend(client, fusion="rrf_retriever").ensure_index()
    cluster.on("GET", "/", {"version": {"number": "9.1.0"}})
    with pytest.raises(
        IndexUnavailableError, match=r"'basic' licence.*TELLER_ELASTICSEARCH_FUSION=client"
    ):
        _backend(client, fusion="rrf_retriever").ensure_index()
    cluster.on("GET", "/_license", {"license": {"type": "enterprise"}})
    assert _backend(client, fusion="rrf_retriever").ensure_index() == "teller-chunks-v1"
    cluster.on("GET", "/", {"version": {"number": "8.11.4"}})
    with pytest.raises(IndexUnavailableError, match=r"needs 8\.12"):
        _backend(client).ensure_index()


def _leg(hits: list[tuple[int, float]]) -> dict[str, Any]:
    return {
        "hits": {
            "hits": [
                {
                    "_id": str(key),
                    "_score": score,
                    "_source": {"doc_id": f"doc-{key}", "version": 1, "text": f"t{key}"},
                }
                for key, score in hits
            ]
        }
    }


BM25_HITS = [(1, 9.0), (2, 4.0), (3, 1.0)]
KNN_HITS = [(3, 0.95), (4, 0.9), (1, 0.6)]  # cosine 0.9, 0.8, 0.2


@pytest.mark.parametrize("client_fusion", ["convex", "rrf"])
def test_client_fusion_ranks_like_the_fusion_functions(
    cluster: FakeCluster, client: Elasticsearch, client_fusion: str
) -> None:
    cluster.on("POST", f"/{ALIAS}/_msearch", {"responses": [_leg(BM25_HITS), _leg(KNN_HITS)]})
    backend = _backend(client, client_fusion=client_fusion, candidates=50)
    hits = backend.search(SearchRequest(query="apr", k=3, filters=FILTERS), VECTOR)

    [request] = cluster.sent("POST", f"/{ALIAS}/_msearch")
    assert request.body == json.loads(
        json.dumps(es_queries.hybrid_msearch_body("apr", VECTOR, FILTERS, 50))
    )
    sparse = dict(BM25_HITS)
    dense = {key: 2 * score - 1 for key, score in KNN_HITS}
    expected = (
        fusion.convex(dense, sparse, dense_weight=0.7)
        if client_fusion == "convex"
        else fusion.rrf(dense, sparse, k=60)
    )
    assert [(h.key, h.score) for h in hits] == [
        (k, pytest.approx(s)) for k, s in fusion.top_k(expected, 3)
    ]
    by_key = {h.key: h for h in hits}
    assert by_key[1].bm25_score == 9.0 and by_key[1].dense_score == pytest.approx(0.2)
    assert [h.rank for h in hits] == [1, 2, 3]
    for hit in hits:
        assert hit.bm25_score == sparse.get(hit.key)
        assert hit.doc_id == f"doc-{hit.key}"


def test_single_leg_modes_send_one_search(cluster: FakeCluster, client: Elasticsearch) -> None:
    cluster.on("POST", f"/{ALIAS}/_search", _leg(BM25_HITS), _leg(KNN_HITS))
    backend = _backend(client)
    bm25 = backend.search(SearchRequest(query="apr", k=2, mode="bm25"))
    assert [(h.key, h.score, h.dense_score) for h in bm25] == [(1, 9.0, None), (2, 4.0, None)]
    dense = backend.search(SearchRequest(query="apr", k=2, mode="dense"), VECTOR)
    assert [(h.key, h.bm25_score) for h in dense] == [(3, None), (4, None)]
    assert dense[0].score == dense[0].dense_score == pytest.approx(0.9)
    first, second = cluster.sent("POST", f"/{ALIAS}/_search")
    assert "query" in first.body and "knn" not in first.body
    assert "knn" in second.body and "query" not in second.body
    with pytest.raises(ValueError):
        backend.search(SearchRequest(query="apr", mode="dense"), np.ones(3, dtype=np.float32))


def test_a_failed_leg_is_an_index_error(cluster: FakeCluster, client: Elasticsearch) -> None:
    failed = {
        "error": {"type": "search_phase_execution_exception", "reason": "all shards failed"},
        "status": 400,
    }
    cluster.on("POST", f"/{ALIAS}/_msearch", {"responses": [_leg(BM25_HITS), failed]})
    with pytest.raises(IndexUnavailableError, match="all shards failed"):
        _backend(client).search(SearchRequest(query="apr"), VECTOR)


def test_rrf_retriever_search_reports_fused_and_leg_scores(
    cluster: FakeCluster, client: Elasticsearch
) -> None:
    hit = {"_id": "7", "_score": 1 / 61 + 1 / 62, "_source": {"doc_id": "doc-7", "version": 2}}
    hit |= _explained((1, 3.5), (2, 0.8))
    cluster.on("POST", f"/{ALIAS}/_search", {"hits": {"hits": [hit]}})
    [result] = _backend(client, fusion="rrf_retriever").search(
        SearchRequest(query="apr", k=1), VECTOR
    )
    # Ranks 1 (BM25) and 2 (kNN): the embedded index's fusion.rrf gives the same score.
    ranked = fusion.rrf({6: 0.9, 7: 0.6}, {7: 3.5}, k=60)
    assert result.score == pytest.approx(ranked[7])
    assert (result.bm25_score, result.dense_score) == (3.5, pytest.approx(0.6))
    [request] = cluster.sent("POST", f"/{ALIAS}/_search")
    assert request.body["retriever"]["rrf"]["rank_window_size"] == 100


def _bulk_items(*items: tuple[str, str, int]) -> Callable[[Request], dict[str, Any]]:
    def answer(_: Request) -> dict[str, Any]:
        results = []
        for op, doc_id, status in items:
            item: dict[str, Any] = {"_id": doc_id, "status": status}
            if status >= 300:
                item["error"] = {"type": "document_parsing_exception", "reason": f"bad {doc_id}"}
            results.append({op: item})
        return {"errors": any(s >= 300 for *_, s in items), "items": results}

    return answer


def test_upsert_sends_index_actions_and_waits_for_refresh(
    cluster: FakeCluster, client: Elasticsearch
) -> None:
    cluster.on("PUT", "/_bulk", _bulk_items(("index", "1", 201), ("index", "2", 200)))
    chunks = chunks_from_texts(["a", "b"])
    _backend(client).upsert(chunks)
    [request] = cluster.sent("PUT", "/_bulk")
    assert "refresh=wait_for" in request.query
    expected = [
        part
        for c in chunks
        for part in ({"index": {"_index": ALIAS, "_id": str(c.key)}}, es_queries.chunk_document(c))
    ]
    assert request.body == json.loads(json.dumps(expected))


def test_rejected_documents_are_listed_and_the_rest_written(
    cluster: FakeCluster, client: Elasticsearch
) -> None:
    cluster.on("PUT", "/_bulk", _bulk_items(("index", "1", 201), ("index", "2", 400)))
    with pytest.raises(
        BulkIndexingError, match="chunk 2: document_parsing_exception: bad 2"
    ) as caught:
        _backend(client).upsert(chunks_from_texts(["a", "b"]))
    assert [(f.key, f.status) for f in caught.value.failures] == [(2, 400)]


def test_throttled_documents_are_retried(cluster: FakeCluster, client: Elasticsearch) -> None:
    cluster.on(
        "PUT",
        "/_bulk",
        _bulk_items(("index", "1", 201), ("index", "2", 429)),
        _bulk_items(("index", "2", 201)),
    )
    _backend(client).upsert(chunks_from_texts(["a", "b"]))
    first, retry = cluster.sent("PUT", "/_bulk")
    assert [line["index"]["_id"] for line in retry.body[::2]] == ["2"]
    assert len(first.body) == 4


def test_deleting_unknown_keys_is_not_an_error(cluster: FakeCluster, client: Elasticsearch) -> None:
    cluster.on("PUT", "/_bulk", _bulk_items(("delete", "1", 200), ("delete", "99", 404)))
    cluster.on("POST", f"/{ALIAS}/_refresh", {"_shards": {"failed": 0}})
    _backend(client, refresh=True).delete([1, 99])
    [request] = cluster.sent("PUT", "/_bulk")
    assert request.body == [
        {"delete": {"_index": ALIAS, "_id": "1"}},
        {"delete": {"_index": ALIAS, "_id": "99"}},
    ]
    # refresh=True: one refresh after the whole batch instead of one per bulk request.
    assert "refresh=false" in request.query and len(cluster.sent("POST", f"/{ALIAS}/_refresh")) == 1


def test_document_frequencies_count_in_one_search(
    cluster: FakeCluster, client: Elasticsearch
) -> None:
    cluster.on(
        "POST",
        f"/{ALIAS}/_search",
        {
            "hits": {"total": {"value": 40, "relation": "eq"}, "hits": []},
            "aggregations": {"t0": {"doc_count": 7}, "t1": {"doc_count": 0}},
        },
    )
    assert _backend(client).document_frequencies(["mortgag", "zelle", "mortgag"]) == (
        40,
        {"mortgag": 7, "zelle": 0},
    )
    [request] = cluster.sent("POST", f"/{ALIAS}/_search")
    assert request.body["size"] == 0 and request.body["track_total_hits"] is True
    assert request.body["aggs"] == {
        "t0": {"filter": {"term": {es_mapping.TEXT_FIELD: "mortgag"}}},
        "t1": {"filter": {"term": {es_mapping.TEXT_FIELD: "zelle"}}},
    }


def test_keys_walk_the_index_with_search_after(cluster: FakeCluster, client: Elasticsearch) -> None:
    page = [{"_id": str(k), "sort": [k]} for k in range(1, 5001)]
    cluster.on(
        "POST",
        f"/{ALIAS}/_search",
        {"hits": {"hits": page}},
        {"hits": {"hits": [{"_id": "9000", "sort": [9000]}]}},
    )
    assert _backend(client).keys() == set(range(1, 5001)) | {9000}
    first, second = cluster.sent("POST", f"/{ALIAS}/_search")
    assert "search_after" not in first.body and second.body["search_after"] == [5000]
    assert first.body["_source"] is False and first.body["sort"] == [{"key": "asc"}]


def test_reindex_loads_a_new_version_then_swaps_the_alias(
    cluster: FakeCluster, client: Elasticsearch
) -> None:
    cluster.on("GET", f"/_alias/{ALIAS}", {"teller-chunks-v1": {"aliases": {ALIAS: {}}}})
    cluster.on("PUT", rf"/{ALIAS}-v\d+t\d+", {"acknowledged": True})
    cluster.on("PUT", rf"/{ALIAS}-v\d+t\d+/_settings", {"acknowledged": True})
    cluster.on("POST", rf"/{ALIAS}-v\d+t\d+/_refresh", {"_shards": {}})
    cluster.on("PUT", "/_bulk", _bulk_items(("index", "5", 201)))
    cluster.on("POST", "/_aliases", {"acknowledged": True}).on(
        "DELETE", "/teller-chunks-v1", {"acknowledged": True}
    )

    name = _backend(client, replicas=1).reindex(chunks_from_texts(["fresh"], start_key=5))

    [create] = cluster.sent("PUT", rf"/{ALIAS}-v\d+t\d+")
    assert create.body == es_mapping.index_body(DIM, replicas=1, bulk_load=True)
    [bulk] = cluster.sent("PUT", "/_bulk")
    assert bulk.body[0] == {"index": {"_index": name, "_id": "5"}}
    [settings] = cluster.sent("PUT", rf"/{name}/_settings")
    assert settings.body == es_mapping.serving_settings(1)
    [swap] = cluster.sent("POST", "/_aliases")
    assert swap.body == {
        "actions": es_mapping.alias_swap_actions(ALIAS, name, ["teller-chunks-v1"])
    }
    assert [r.method for r in cluster.requests[-2:]] == ["POST", "DELETE"]


def test_a_failed_reindex_deletes_its_unfinished_index(
    cluster: FakeCluster, client: Elasticsearch
) -> None:
    cluster.on("PUT", rf"/{ALIAS}-v\d+t\d+", {"acknowledged": True})
    cluster.on("DELETE", rf"/{ALIAS}-v\d+t\d+", {"acknowledged": True})
    cluster.on("PUT", "/_bulk", _bulk_items(("index", "5", 400)))
    with pytest.raises(BulkIndexingError):
        _backend(client).reindex(chunks_from_texts(["fresh"], start_key=5))
    assert len(cluster.sent("DELETE", rf"/{ALIAS}-v\d+t\d+")) == 1
    assert not cluster.sent("POST", "/_aliases")


def test_unreachable_cluster_says_what_to_check(
    cluster: FakeCluster, client: Elasticsearch
) -> None:
    for method in ("GET", "HEAD"):
        cluster.fail(method, "/", TransportConnectionError("Connection refused"))
    backend = _backend(client)
    with pytest.raises(
        IndexUnavailableError,
        match=r"cannot reach Elasticsearch at http://es\.test:9200.*TELLER_ELASTICSEARCH_URL",
    ):
        backend.ensure_index()
    report = backend.health()
    assert report["ok"] is False and "cannot reach" in report["error"]
    assert backend.ping() is False


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (401, "TELLER_ELASTICSEARCH_API_KEY"),
        (403, "privileges"),
        (404, "teller reindex"),
        (500, "refused to count"),
    ],
)
def test_api_errors_become_index_errors(
    cluster: FakeCluster, client: Elasticsearch, status: int, message: str
) -> None:
    cluster.on(
        "POST",
        f"/{ALIAS}/_count",
        {"error": {"type": "x", "reason": "y"}, "status": status},
        status=status,
    )
    with pytest.raises(IndexUnavailableError, match=message):
        _backend(client).count()


def test_health_reports_a_ready_index(cluster: FakeCluster, client: Elasticsearch) -> None:
    _with_index(cluster)
    report = _backend(client).health()
    assert report == {
        "backend": "elasticsearch",
        "url": "http://es.test:9200",
        "alias": ALIAS,
        "version": "8.15.3",
        "index": "teller-chunks-v1",
        "status": "yellow",
        "count": 3,
        "ok": True,
    }


def test_from_settings_wires_the_fusion_settings() -> None:
    settings = Settings(
        embedding_model="unused",
        elasticsearch_url="http://es.test:9200",
        elasticsearch_index="bank-chunks",
        elasticsearch_fusion="rrf_retriever",
        fusion="rrf",
        fusion_dense_weight=0.6,
        rrf_k=30,
        candidates=40,
    )
    index = ElasticsearchIndex.from_settings(settings, DIM)
    assert (index.alias, index.dimension, index.fusion, index.client_fusion) == (
        "bank-chunks",
        DIM,
        "rrf_retriever",
        "rrf",
    )
    assert (index.dense_weight, index.rrf_k, index.candidates) == (0.6, 30, 40)
    assert index.url == "http://es.test:9200"
    index.close()


@pytest.mark.parametrize(
    ("credentials", "expected"),
    [
        ({"elasticsearch_api_key": SecretStr("c2VjcmV0")}, "ApiKey c2VjcmV0"),
        (
            {"elasticsearch_username": "teller", "elasticsearch_password": SecretStr("pw")},
            "Basic dGVsbGVyOnB3",
        ),
    ],
)
def test_build_client_sends_the_configured_credentials(
    cluster: FakeCluster, credentials: dict[str, Any], expected: str
) -> None:
    settings = Settings(
        embedding_model="unused", elasticsearch_url="http://es.test:9200", **credentials
    )
    node_class = type("Node", (ScriptedNode,), {"cluster": cluster})
    client = build_client(settings, node_class=node_class)
    client.info()
    client.close()
    [request] = cluster.requests
    assert request.headers["authorization"] == expected
    assert "compatible-with=8" in request.headers["accept"]


# -- export and import through the backend --------------------------------------------


def _stored(chunks: list[IndexedChunk]) -> dict[str, Any]:
    return {
        "hits": {
            "hits": [
                {"_id": str(c.key), "_source": es_queries.chunk_document(c), "sort": [c.key]}
                for c in chunks
            ]
        }
    }


def test_export_reads_vectors_and_import_bulk_loads_them(
    cluster: FakeCluster, client: Elasticsearch, tmp_path: Path
) -> None:
    chunks = chunks_from_texts(CORPUS, product="cd", effective_until="2030-01-01")
    cluster.on("GET", "/", {"version": {"number": "9.2.1"}})
    cluster.on("POST", f"/{ALIAS}/_search", _stored(chunks))
    cluster.on("PUT", "/_bulk", _bulk_items(*(("index", str(c.key), 201) for c in chunks)))
    backend = _backend(client)

    path = tmp_path / "chunks.jsonl.gz"
    summary = export_index(backend, path, embedder="hash-384", dimension=DIM)
    assert summary.count == 3
    [scan] = cluster.sent("POST", f"/{ALIAS}/_search")
    assert scan.body["_source"] == {"exclude_vectors": False}  # 9.2+ drops vectors otherwise
    assert verify_index_file(path)[0].embedder == "hash-384"

    import_index(path, backend, expected_embedder="hash-384")
    [bulk] = cluster.sent("PUT", "/_bulk")
    assert bulk.body == json.loads(
        json.dumps(
            [
                part
                for c in chunks
                for part in (
                    {"index": {"_index": ALIAS, "_id": str(c.key)}},
                    es_queries.chunk_document(c),
                )
            ]
        )
    )


def test_import_refuses_damaged_files_and_other_models(
    cluster: FakeCluster, client: Elasticsearch, tmp_path: Path
) -> None:
    path = tmp_path / "chunks.jsonl"
    export_index(chunks_from_texts(CORPUS), path, embedder="hash-384", dimension=DIM)
    lines = path.read_text().splitlines(keepends=True)
    backend = _backend(client)

    damaged = tmp_path / "damaged.jsonl"
    damaged.write_text("".join(lines).replace("stolen", "found"))
    with pytest.raises(DocumentParseError, match="damaged"):
        import_index(damaged, backend)
    truncated = tmp_path / "truncated.jsonl"
    truncated.write_text("".join(lines[:-1]))
    with pytest.raises(DocumentParseError, match="incomplete"):
        import_index(truncated, backend)
    with pytest.raises(IndexUnavailableError, match="384-dimensional"):
        import_index(path, _backend(client, dimension=768))
    with pytest.raises(IndexUnavailableError, match="not 'other-model'"):
        import_index(path, backend, expected_embedder="other-model")
    assert not cluster.sent("PUT", "/_bulk")
