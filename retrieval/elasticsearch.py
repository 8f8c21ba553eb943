"""Elasticsearch index backend: the same `IndexBackend` as the embedded index.

Targets Elasticsearch 8.12+ and 9.x with the official `elasticsearch` client 8.12+ or
9.x. The index layout and its checks are in `es_mapping`, request bodies in
`es_queries`, response parsing in `es_responses`, the client, bulk writes and the
translation of client errors into `IndexUnavailableError` messages that say what to do
in `es_client`, and the management of the versioned index behind the alias (creation
and checks, `reindex`, readiness) in `es_alias`; this module holds the backend that
drives them: its configuration, writes, reads and search.

Hybrid search fuses like the embedded index, chosen by `fusion`
(`TELLER_ELASTICSEARCH_FUSION`):

* ``"client"`` (default, any licence): both legs in one `_msearch` request, fused here
  with `retrieval.fusion` (`convex` with `dense_weight`, or `rrf` with `rrf_k`), so
  both backends rank the same candidate lists identically.
* ``"rrf_retriever"``: the `rrf` retriever fuses on the server (8.16+, a licence that
  includes RRF: Enterprise, or a trial). Scores are halved to equal
  `fusion.rrf(..., dense_weight=0.5)`, the embedded index's RRF.

Writes go through the alias `alias`, which points at one versioned index
`<alias>-v<timestamp>`; `reindex` builds a new version and swaps the alias atomically.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from elasticsearch import Elasticsearch

from retrieval import es_mapping, es_queries, es_responses
from retrieval.errors import BulkIndexingError, IndexUnavailableError
from retrieval.es_alias import VersionedAlias
from retrieval.es_client import (
    CompatibleWith8Transport,
    build_client,
    bulk_indexing_error,
    bulk_write,
)
from retrieval.types import FusionMethod, IndexedChunk, SearchHit, SearchRequest, Vector

if TYPE_CHECKING:
    from bot.settings import Settings

__all__ = [
    "EXCLUDE_VECTORS_MIN_VERSION",
    "RRF_MIN_VERSION",
    "BulkIndexingError",
    "CompatibleWith8Transport",
    "ElasticsearchFusion",
    "ElasticsearchIndex",
    "Refresh",
    "build_client",
]

ElasticsearchFusion = Literal["rrf_retriever", "client"]
Refresh = bool | Literal["wait_for"]
RRF_MIN_VERSION = es_mapping.RRF_MIN_VERSION
EXCLUDE_VECTORS_MIN_VERSION = (9, 2)


class ElasticsearchIndex(VersionedAlias):
    """`IndexBackend` over an Elasticsearch alias. See the module docstring.

    The constructor only stores its arguments; `ensure_index()` talks to the cluster
    (call it once at start-up). `refresh` is the bulk `refresh` policy: ``"wait_for"``
    (default) makes every write visible to the next search; ``False`` leaves it to the
    refresh interval (call `flush()` to force it).
    """

    def __init__(
        self,
        client: Elasticsearch,
        *,
        alias: str,
        dimension: int,
        fusion: ElasticsearchFusion,
        dense_weight: float = 0.7,
        rrf_k: int = 60,
        candidates: int = 100,
        refresh: Refresh = "wait_for",
        client_fusion: FusionMethod = "convex",
        shards: int = 1,
        replicas: int | None = None,
        vector_index: es_mapping.VectorIndexType = "int8_hnsw",
        bulk_chunk_size: int = 500,
        bulk_max_retries: int = 3,
        bulk_initial_backoff: float = 2.0,
        bulk_max_backoff: float = 60.0,
    ):
        es_mapping.validate_index_name(alias)
        if dimension < 1:
            raise ValueError("dimension must be positive")
        if fusion not in ("rrf_retriever", "client"):
            raise ValueError("fusion must be 'rrf_retriever' or 'client'")
        if client_fusion not in ("convex", "rrf"):
            raise ValueError("client_fusion must be 'convex' or 'rrf'")
        if not 0.0 <= dense_weight <= 1.0:
            raise ValueError("dense_weight must be within [0, 1]")
        if rrf_k < 1 or candidates < 1 or bulk_chunk_size < 1 or bulk_max_retries < 0:
            raise ValueError("rrf_k, candidates and bulk_chunk_size must be positive")
        self._client = client
        self.alias = alias
        self.dimension = dimension
        self.fusion: ElasticsearchFusion = fusion
        self.client_fusion: FusionMethod = client_fusion
        self.dense_weight = dense_weight
        self.rrf_k = rrf_k
        self.candidates = candidates
        self.refresh: Refresh = refresh
        self.shards = shards
        self.replicas = replicas
        self.vector_index: es_mapping.VectorIndexType = vector_index
        self._bulk_options: dict[str, Any] = {
            "chunk_size": bulk_chunk_size,
            "max_retries": bulk_max_retries,
            "initial_backoff": bulk_initial_backoff,
            "max_backoff": bulk_max_backoff,
        }
        self._owns_client = False
        self._version: tuple[int, int, int] | None = None
        self._dirty = False
        self._lock = threading.Lock()

    @classmethod
    def from_settings(
        cls, settings: Settings, dimension: int, **overrides: Any
    ) -> ElasticsearchIndex:
        """The backend configured by `settings` (which it owns and closes)."""
        options: dict[str, Any] = {
            "alias": settings.elasticsearch_index,
            "dimension": dimension,
            "fusion": settings.elasticsearch_fusion,
            "client_fusion": settings.fusion,
            "dense_weight": settings.fusion_dense_weight,
            "rrf_k": settings.rrf_k,
            "candidates": settings.candidates,
            **overrides,
        }
        index = cls(build_client(settings), **options)
        index._owns_client = True
        return index

    @property
    def client(self) -> Elasticsearch:
        """The underlying client (for operations tools and tests)."""
        return self._client

    # -- life cycle -------------------------------------------------------------------

    def close(self) -> None:
        """Close the client if this backend created it (`from_settings`)."""
        if self._owns_client:
            self._client.close()

    def flush(self) -> None:
        """Make every acknowledged write searchable now (only needed with refresh=False)."""
        with self._lock:
            dirty, self._dirty = self._dirty, False
        if dirty:
            with self._errors("refresh the index"):
                self._client.indices.refresh(index=self.alias)

    # -- writes -----------------------------------------------------------------------

    def upsert(self, chunks: Sequence[IndexedChunk]) -> None:
        """Index or replace `chunks` (by key) through the alias."""
        for chunk in chunks:
            self._check_embedding(chunk)
        if chunks:
            self._bulk((es_queries.index_action(self.alias, c) for c in chunks), self.refresh)

    def delete(self, keys: Sequence[int]) -> None:
        """Delete chunks by key; unknown keys are ignored."""
        if keys:
            self._bulk((es_queries.delete_action(self.alias, int(k)) for k in keys), self.refresh)

    def _check_embedding(self, chunk: IndexedChunk) -> None:
        if chunk.embedding is None:
            raise ValueError(f"chunk {chunk.key} has no embedding")
        if chunk.embedding.shape != (self.dimension,):
            raise ValueError(
                f"chunk {chunk.key} has a {chunk.embedding.shape} embedding, "
                f"expected ({self.dimension},)"
            )

    def _bulk(self, actions: Iterable[dict[str, Any]], refresh: Refresh) -> int:
        """Send `actions` in chunks (see `es_client.bulk_write`); raise
        `BulkIndexingError` listing every failed document."""
        # `True` would refresh after every chunk: refresh once at the end instead.
        per_request: Refresh = "wait_for" if refresh == "wait_for" else False
        with self._errors("write chunks"):
            written, failures = bulk_write(
                self._client, actions, refresh=per_request, **self._bulk_options
            )
            if refresh is True:
                self._client.indices.refresh(index=self.alias)
        with self._lock:
            self._dirty = self._dirty or refresh is False
        if failures:
            raise bulk_indexing_error(failures, written)
        return written

    # -- reads ------------------------------------------------------------------------

    def count(self) -> int:
        with self._errors("count chunks"):
            return int(self._client.count(index=self.alias)["count"])

    def keys(self) -> set[int]:
        return {key for key, _ in self._scan(with_source=False, page=5000)}

    def document_frequencies(self, terms: Sequence[str]) -> tuple[int, dict[str, int]]:
        unique = list(dict.fromkeys(terms))
        with self._errors("count term frequencies"):
            response = self._client.search(
                index=self.alias, body=es_queries.document_frequencies_body(unique)
            ).body
        aggregations = response.get("aggregations") or {}
        total = int(response["hits"]["total"]["value"])
        return total, {t: int(aggregations[f"t{i}"]["doc_count"]) for i, t in enumerate(unique)}

    def iter_chunks(self, batch_size: int = 500) -> Iterator[list[IndexedChunk]]:
        """Every chunk with its embedding, in key order, `batch_size` at a time (export)."""
        batch: list[IndexedChunk] = []
        for key, source in self._scan(with_source=True, page=batch_size):
            batch.append(es_responses.chunk_from_source(key, source))
            if len(batch) >= batch_size:
                yield batch
                batch = []
        if batch:
            yield batch

    def _scan(self, *, with_source: bool, page: int) -> Iterator[tuple[int, Mapping[str, Any]]]:
        exclude_option = with_source and self.server_version() >= EXCLUDE_VECTORS_MIN_VERSION
        after: int | None = None
        while True:
            body = es_queries.scan_body(
                after, page, with_source=with_source, exclude_vectors_option=exclude_option
            )
            with self._errors("list chunks"):
                hits = self._client.search(index=self.alias, body=body)["hits"]["hits"]
            for hit in hits:
                yield int(hit["_id"]), hit.get("_source", {})
            if len(hits) < page:
                return
            after = int(hits[-1]["sort"][0])

    def search(self, request: SearchRequest, query_vector: Vector | None = None) -> list[SearchHit]:
        """BM25, dense or hybrid search; hits carry the fused and per-leg scores."""
        if request.k < 1:
            raise ValueError("k must be at least 1")
        if request.mode != "bm25":
            if query_vector is None:
                raise ValueError(f"{request.mode} search needs the query vector")
            if query_vector.shape != (self.dimension,):
                raise ValueError(f"the query vector must have shape ({self.dimension},)")
        n = max(self.candidates, request.k)
        if request.mode == "hybrid" and self.fusion == "rrf_retriever":
            assert query_vector is not None
            return self._search_rrf_retriever(request, query_vector, n)
        sparse: dict[int, float] = {}
        dense: dict[int, float] = {}
        with self._errors("search"):
            if request.mode == "bm25":
                body = es_queries.bm25_body(request.query, request.filters, n)
                responses = [self._client.search(index=self.alias, body=body).body]
                sparse = es_responses.leg_scores(responses[0], dense=False)
            elif request.mode == "dense":
                assert query_vector is not None
                body = es_queries.knn_body(query_vector, request.filters, n)
                responses = [self._client.search(index=self.alias, body=body).body]
                dense = es_responses.leg_scores(responses[0], dense=True)
            else:
                assert query_vector is not None
                searches = es_queries.hybrid_msearch_body(
                    request.query, query_vector, request.filters, n
                )
                responses = list(self._client.msearch(index=self.alias, body=searches)["responses"])
                for response in responses:
                    if "error" in response:
                        raise IndexUnavailableError(
                            f"Elasticsearch at {self.url} failed a search leg: "
                            f"{es_responses.item_error(response)}"
                        )
                sparse = es_responses.leg_scores(responses[0], dense=False)
                dense = es_responses.leg_scores(responses[1], dense=True)
        return es_responses.fused_hits(
            sparse,
            dense,
            es_responses.sources(*responses),
            k=request.k,
            method=None if request.mode != "hybrid" else self.client_fusion,
            dense_weight=self.dense_weight,
            rrf_k=self.rrf_k,
        )

    def _search_rrf_retriever(
        self, request: SearchRequest, vector: Vector, n: int
    ) -> list[SearchHit]:
        body = es_queries.rrf_retriever_body(
            request.query, vector, request.filters, k=request.k, window=n, rank_constant=self.rrf_k
        )
        with self._errors("search with the rrf retriever"):
            hits = self._client.search(index=self.alias, body=body)["hits"]["hits"]
        return es_responses.rrf_hits(hits)
