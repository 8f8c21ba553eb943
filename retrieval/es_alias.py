"""The versioned index behind the Elasticsearch backend's alias.

`ElasticsearchIndex` reaches its chunks through the alias `alias`, which points at one
versioned index `<alias>-v<timestamp>`. `VersionedAlias`, its base class, manages that
index: `ensure_index` creates it at start-up (or checks that the existing one fits this
Teller), `reindex` builds a new version and swaps the alias atomically, `ping` and
`health` report readiness. The backend in `retrieval.elasticsearch` sets the attributes
declared here and holds the writes, reads and search.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from elasticsearch import ApiError, Elasticsearch, NotFoundError, TransportError

from retrieval import es_mapping, es_queries
from retrieval.errors import IndexUnavailableError
from retrieval.es_client import node_url, translated_errors
from retrieval.types import IndexedChunk

if TYPE_CHECKING:
    from retrieval.elasticsearch import ElasticsearchFusion, Refresh

log = logging.getLogger(__name__)


class VersionedAlias:
    """Creates, checks, rebuilds and reports on the index behind `alias`; the base of
    `ElasticsearchIndex`, whose constructor sets the attributes declared here."""

    _client: Elasticsearch
    alias: str
    dimension: int
    fusion: ElasticsearchFusion
    shards: int
    replicas: int | None
    vector_index: es_mapping.VectorIndexType
    _version: tuple[int, int, int] | None

    if TYPE_CHECKING:  # defined by ElasticsearchIndex

        def count(self) -> int: ...

        def _check_embedding(self, chunk: IndexedChunk) -> None: ...

        def _bulk(self, actions: Iterable[dict[str, Any]], refresh: Refresh) -> int: ...

    # -- errors ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The first node's address, without credentials (for messages)."""
        return node_url(self._client)

    def _errors(self, doing: str) -> AbstractContextManager[None]:
        return translated_errors(doing, url=self.url, alias=self.alias)

    # -- life cycle -------------------------------------------------------------------

    def server_version(self) -> tuple[int, int, int]:
        """The cluster's version, read once."""
        if self._version is None:
            with self._errors("read the cluster version"):
                number = str(self._client.info()["version"]["number"])
            self._version = es_mapping.parse_version(number)
        return self._version

    def _alias_indices(self) -> tuple[list[str], bool]:
        """(indices behind the alias, whether a plain index is named like the alias)."""
        with self._errors(f"look up the alias '{self.alias}'"):
            try:
                return sorted(self._client.indices.get_alias(name=self.alias).body), False
            except NotFoundError:
                return [], bool(self._client.indices.exists(index=self.alias))

    def ensure_index(self) -> str:
        """Create `<alias>-v<timestamp>` and the alias when missing; otherwise check that
        the existing index's mapping fits. Returns the index behind the alias."""
        version = self.server_version()
        rrf = self.fusion == "rrf_retriever"
        problem = es_mapping.version_problem(version, rrf_retriever=rrf)
        if problem:
            raise IndexUnavailableError(problem)
        if rrf:
            self._check_rrf_licence()
        for attempt in range(2):
            indices, plain_index = self._alias_indices()
            problem = es_mapping.alias_problem(self.alias, indices, plain_index=plain_index)
            if problem:
                raise IndexUnavailableError(problem)
            if indices:
                self._check_mapping(indices[0])
                return indices[0]
            name = es_mapping.versioned_index_name(self.alias)
            body = self._index_body(alias=self.alias)
            try:
                with self._errors(f"create the index {name}"):
                    self._client.indices.create(index=name, **body)
            except IndexUnavailableError:
                if attempt:  # another process may have created the alias meanwhile
                    raise
                continue
            log.info("created Elasticsearch index %s behind alias %s", name, self.alias)
            return name
        raise IndexUnavailableError(
            f"could not create the alias '{self.alias}'"
        )  # pragma: no cover

    def _index_body(self, **options: Any) -> dict[str, Any]:
        return es_mapping.index_body(
            self.dimension,
            shards=self.shards,
            replicas=self.replicas,
            index_type=self.vector_index,
            **options,
        )

    def _check_mapping(self, index: str) -> None:
        with self._errors(f"read the mapping of {index}"):
            mapping = self._client.indices.get_mapping(index=index).body[index]["mappings"]
        problems = es_mapping.mapping_problems(mapping, self.dimension)
        if problems:
            raise IndexUnavailableError(
                f"the index {index} behind '{self.alias}' does not fit this Teller: "
                + "; ".join(problems)
                + ". Run `teller reindex` to build a new index version and switch the alias"
            )

    def _check_rrf_licence(self) -> None:
        try:
            with self._errors("read the licence"):
                licence = self._client.license.get().body.get("license", {})
        except IndexUnavailableError as exc:  # no `monitor` privilege: let searches tell
            log.warning("could not check the Elasticsearch licence for RRF: %s", exc)
            return
        problem = es_mapping.rrf_licence_problem(licence.get("type"))
        if problem:
            raise IndexUnavailableError(problem)

    # -- reindex and readiness --------------------------------------------------------

    def reindex(self, chunks: Iterable[IndexedChunk], *, keep_old: bool = False) -> str:
        """Build a new index version from `chunks`, swap the alias to it atomically and
        delete the old version (unless `keep_old`). Returns the new index's name.

        Searches keep using the old version until the swap. Writes sent meanwhile go to
        the old version and are lost with it: reconcile with SQL after a reindex.
        """
        self.server_version()
        name = es_mapping.versioned_index_name(self.alias)
        with self._errors(f"create the index {name}"):
            self._client.indices.create(index=name, **self._index_body(bulk_load=True))

        def actions() -> Iterator[dict[str, Any]]:
            for chunk in chunks:
                self._check_embedding(chunk)
                yield es_queries.index_action(name, chunk)

        try:
            written = self._bulk(actions(), refresh=False)
            with self._errors(f"finish loading {name}"):
                self._client.indices.put_settings(
                    index=name, settings=es_mapping.serving_settings(self.replicas)
                )
                self._client.indices.refresh(index=name)
        except BaseException:
            try:
                with self._errors(f"delete the unfinished index {name}"):
                    self._client.indices.delete(index=name, ignore_unavailable=True)
            except IndexUnavailableError as cleanup:
                log.warning("left the unfinished index %s behind: %s", name, cleanup)
            raise
        old, plain_index = self._alias_indices()
        actions_body = es_mapping.alias_swap_actions(
            self.alias, name, old, replace_concrete_index=plain_index
        )
        with self._errors(f"point the alias '{self.alias}' at {name}"):
            self._client.indices.update_aliases(actions=actions_body)
            if old and not keep_old:
                self._client.indices.delete(index=",".join(old), ignore_unavailable=True)
        log.info(
            "reindexed %d chunks into %s (alias %s; previous: %s)", written, name, self.alias, old
        )
        return name

    def ping(self) -> bool:
        """True when the cluster answers."""
        try:
            return bool(self._client.ping())
        except (ApiError, TransportError):
            return False

    def health(self) -> dict[str, Any]:
        """Readiness report for the API; never raises. `ok` needs a reachable cluster,
        a non-red status and the alias in place with a fitting mapping."""
        report: dict[str, Any] = {"backend": "elasticsearch", "url": self.url, "alias": self.alias}
        try:
            version = self.server_version()
            report["version"] = ".".join(map(str, version))
            indices, _ = self._alias_indices()
            report["index"] = indices[0] if len(indices) == 1 else indices
            if len(indices) == 1:
                self._check_mapping(indices[0])
            try:
                with self._errors("read the cluster health"):
                    report["status"] = self._client.cluster.health()["status"]
            except IndexUnavailableError:
                report["status"] = "unknown"
            report["count"] = self.count() if indices else 0
            report["ok"] = len(indices) == 1 and report["status"] != "red"
            if not report["ok"]:
                report["error"] = f"alias '{self.alias}' not ready (status {report['status']})"
        except IndexUnavailableError as exc:
            report["ok"] = False
            report["error"] = str(exc)
        return report
