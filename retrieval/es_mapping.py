"""Elasticsearch index layout for Teller chunks: settings, mapping, names and aliases.

Pure functions that build request bodies, so they are unit-tested without a server.
The layout works on Elasticsearch 8.12 and later (8.12 introduced `int8_hnsw`) and on
9.x. One document per chunk, `_id` = `str(chunk.key)`:

* `content` — the BM25 field: `context` and `text` are copied into it (`copy_to`), so
  it scores the same text the embedded index scores (`IndexedChunk.indexed_text`).
  Indexed with `teller_text` (standard tokenizer, possessive stripping, lower case,
  ASCII folding, English stop words, Porter2 stemming); queried with
  `teller_text_search`, the same chain plus the financial synonyms as a
  `synonym_graph` filter. Synonyms are search-time only (the documented place for
  `synonym_graph`), and the filter sits before the stop filter because a stop filter
  before it would drop every multi-word rule that contains a stop word
  ("certificate *of* deposit").
* `product`, `document_type` (keyword, lower-cased) and `effective_from`,
  `effective_until` (date) — one field per metadata filter.
* `embedding` — `dense_vector`, cosine similarity, HNSW with int8 scalar
  quantisation (about a quarter of the float memory; see the production README).
* `metadata` — the chunk's whole metadata object, stored and not indexed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from retrieval.synonyms import FINANCIAL_SYNONYMS

SCHEMA_VERSION = 1
MIN_VERSION = (8, 12)
RRF_MIN_VERSION = (8, 16)
RRF_LICENCES = frozenset({"enterprise", "platinum", "trial"})
VECTOR_FIELD = "embedding"
TEXT_FIELD = "content"
INDEX_ANALYZER = "teller_text"
SEARCH_ANALYZER = "teller_text_search"

VectorIndexType = Literal["int8_hnsw", "hnsw", "bbq_hnsw"]

# Field name -> mapping type that `mapping_problems` insists on.
REQUIRED_FIELD_TYPES: Mapping[str, str] = {
    "key": "long",
    "doc_id": "keyword",
    "version": "integer",
    "ordinal": "integer",
    "title": "text",
    "section_path": "keyword",
    "context": "text",
    "text": "text",
    TEXT_FIELD: "text",
    "product": "keyword",
    "document_type": "keyword",
    "effective_from": "date",
    "effective_until": "date",
    "metadata": "object",
    VECTOR_FIELD: "dense_vector",
}

# Lower case letters, digits and - _ + . as Elasticsearch allows; not starting with - _ +.
_INDEX_NAME = re.compile(r"^[a-z0-9][a-z0-9._+-]*$")


def synonyms_fingerprint(synonyms: Sequence[str] = FINANCIAL_SYNONYMS) -> str:
    """Short hash of a synonym list, stored in the mapping's `_meta` to spot stale indices."""
    return hashlib.sha256("\n".join(synonyms).encode()).hexdigest()[:16]


def analysis_settings(synonyms: Sequence[str] = FINANCIAL_SYNONYMS) -> dict[str, Any]:
    """The `index.analysis` section: the two analysers and their filters."""
    base_filters = ["teller_possessive", "lowercase", "asciifolding"]
    return {
        "filter": {
            "teller_possessive": {"type": "stemmer", "language": "possessive_english"},
            "teller_stop": {"type": "stop", "stopwords": "_english_"},
            # Porter2 is the Snowball English stemmer the embedded index uses too.
            "teller_stemmer": {"type": "stemmer", "language": "porter2"},
            "teller_synonyms": {
                "type": "synonym_graph",
                "synonyms": list(synonyms),
                "expand": True,
                # A bad rule is skipped instead of making the index unopenable.
                "lenient": True,
            },
        },
        "normalizer": {"teller_lowercase": {"type": "custom", "filter": ["lowercase"]}},
        "analyzer": {
            INDEX_ANALYZER: {
                "type": "custom",
                "tokenizer": "standard",
                "filter": [*base_filters, "teller_stop", "teller_stemmer"],
            },
            SEARCH_ANALYZER: {
                "type": "custom",
                "tokenizer": "standard",
                "filter": [*base_filters, "teller_synonyms", "teller_stop", "teller_stemmer"],
            },
        },
    }


def vector_mapping(
    dimension: int,
    *,
    index_type: VectorIndexType = "int8_hnsw",
    m: int = 16,
    ef_construction: int = 100,
) -> dict[str, Any]:
    """The `dense_vector` field: cosine similarity over an HNSW graph.

    `int8_hnsw` (8.12+) keeps one byte per dimension in memory instead of four;
    `bbq_hnsw` (8.18+) one bit per dimension, for very large indices; `hnsw` keeps floats.
    """
    if not 1 <= dimension <= 4096:
        raise ValueError("dimension must be within [1, 4096]")
    return {
        "type": "dense_vector",
        "dims": dimension,
        "index": True,
        "similarity": "cosine",
        "index_options": {"type": index_type, "m": m, "ef_construction": ef_construction},
    }


def mappings(
    dimension: int,
    *,
    index_type: VectorIndexType = "int8_hnsw",
    synonyms: Sequence[str] = FINANCIAL_SYNONYMS,
) -> dict[str, Any]:
    """The index mapping for chunks embedded with a `dimension`-sized model."""
    searchable_text = {
        "type": "text",
        "analyzer": INDEX_ANALYZER,
        "search_analyzer": SEARCH_ANALYZER,
    }
    # Stored for display and export; only `content` is scored, so these two keep no
    # norms or positions.
    copied_text = {
        "type": "text",
        "analyzer": INDEX_ANALYZER,
        "index_options": "docs",
        "norms": False,
        "copy_to": TEXT_FIELD,
    }
    lowercase_keyword = {"type": "keyword", "normalizer": "teller_lowercase"}
    return {
        "dynamic": "strict",
        "_meta": {
            "teller": {
                "schema_version": SCHEMA_VERSION,
                "dimension": dimension,
                "synonyms": synonyms_fingerprint(synonyms),
            }
        },
        "properties": {
            "key": {"type": "long"},
            "doc_id": {"type": "keyword"},
            "version": {"type": "integer"},
            "ordinal": {"type": "integer"},
            "title": {"type": "text", "index": False},
            "section_path": {"type": "keyword", "ignore_above": 1024},
            "context": copied_text,
            "text": copied_text,
            TEXT_FIELD: searchable_text,
            "product": lowercase_keyword,
            "document_type": lowercase_keyword,
            "effective_from": {"type": "date"},
            "effective_until": {"type": "date"},
            "metadata": {"type": "object", "enabled": False},
            VECTOR_FIELD: vector_mapping(dimension, index_type=index_type),
        },
    }


def index_body(
    dimension: int,
    *,
    shards: int = 1,
    replicas: int | None = None,
    index_type: VectorIndexType = "int8_hnsw",
    synonyms: Sequence[str] = FINANCIAL_SYNONYMS,
    alias: str | None = None,
    bulk_load: bool = False,
) -> dict[str, Any]:
    """Body of the create-index request (settings, mappings and, optionally, the alias).

    `replicas=None` keeps the cluster default (1). `bulk_load=True` switches refresh
    off and replicas to 0 for a reindex; `serving_settings` switches them back.
    """
    if shards < 1:
        raise ValueError("shards must be at least 1")
    index_settings: dict[str, Any] = {"number_of_shards": shards}
    if bulk_load:
        index_settings.update({"number_of_replicas": 0, "refresh_interval": "-1"})
    elif replicas is not None:
        index_settings["number_of_replicas"] = replicas
    body: dict[str, Any] = {
        "settings": {"index": index_settings, "analysis": analysis_settings(synonyms)},
        "mappings": mappings(dimension, index_type=index_type, synonyms=synonyms),
    }
    if alias is not None:
        body["aliases"] = {alias: {"is_write_index": True}}
    return body


def serving_settings(replicas: int | None = None) -> dict[str, Any]:
    """Settings that undo `bulk_load`: default refresh interval, the wanted replicas.

    `None` resets a setting to the cluster default.
    """
    return {"index": {"refresh_interval": None, "number_of_replicas": replicas}}


def validate_index_name(name: str) -> str:
    """Return `name` if Elasticsearch accepts it as an index or alias name."""
    if not name or len(name.encode()) > 255 or name in {".", ".."} or not _INDEX_NAME.match(name):
        raise ValueError(
            f"{name!r} is not a valid Elasticsearch index name: use lower-case letters, "
            "digits, '-', '_', '+' or '.', not starting with '-', '_' or '+'"
        )
    return name


def versioned_index_name(alias: str, now: dt.datetime | None = None) -> str:
    """`<alias>-v<UTC timestamp to the microsecond>`, e.g. `teller-chunks-v20250102T030405123456`.

    Names sort by creation time, so the newest version of an alias is the last one.
    """
    moment = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    return validate_index_name(f"{alias}-v{moment:%Y%m%dt%H%M%S%f}")


def alias_swap_actions(
    alias: str, new_index: str, old_indices: Iterable[str], *, replace_concrete_index: bool = False
) -> list[dict[str, Any]]:
    """Actions for one atomic `POST _aliases`: point `alias` at `new_index` only.

    Searches see either the old index or the new one, never neither. With
    `replace_concrete_index`, a plain index that is itself named `alias` (left by an
    older deployment) is deleted in the same atomic step so the alias can take its name.
    """
    actions: list[dict[str, Any]] = [
        {"add": {"index": new_index, "alias": alias, "is_write_index": True}}
    ]
    if replace_concrete_index:
        actions.append({"remove_index": {"index": alias}})
    for old in sorted(set(old_indices) - {new_index}):
        actions.append({"remove": {"index": old, "alias": alias}})
    return actions


def mapping_problems(mapping: Mapping[str, Any], dimension: int) -> list[str]:
    """What keeps an existing index's mapping (`GET <index>/_mapping` → `mappings`)
    from serving chunks with `dimension`-sized embeddings; empty when it fits."""
    problems: list[str] = []
    meta = mapping.get("_meta", {}).get("teller", {})
    if not meta:
        problems.append("it was not created by Teller (no _meta.teller in the mapping)")
    elif meta.get("schema_version") != SCHEMA_VERSION:
        problems.append(
            f"it has Teller schema version {meta.get('schema_version')}, "
            f"this Teller writes version {SCHEMA_VERSION}"
        )
    properties = mapping.get("properties", {})
    for field, wanted in REQUIRED_FIELD_TYPES.items():
        spec = properties.get(field)
        if spec is None:
            problems.append(f"field {field!r} is missing")
            continue
        actual = spec.get("type", "object")
        if actual != wanted:
            problems.append(f"field {field!r} is {actual!r}, expected {wanted!r}")
    vector = properties.get(VECTOR_FIELD, {})
    if vector.get("type") == "dense_vector":
        if vector.get("dims") != dimension:
            problems.append(
                f"{VECTOR_FIELD!r} holds {vector.get('dims')}-dimensional vectors but the "
                f"embedding model makes {dimension}"
            )
        if vector.get("index") is False:
            problems.append(f"{VECTOR_FIELD!r} is not indexed for kNN search")
        similarity = vector.get("similarity", "cosine")
        if similarity != "cosine":
            problems.append(f"{VECTOR_FIELD!r} uses {similarity!r} similarity, expected 'cosine'")
    return problems


def parse_version(number: str) -> tuple[int, int, int]:
    """`"8.15.3"` (or `"9.1.0-SNAPSHOT"`) as `(8, 15, 3)`."""
    parts = [int(part) for part in re.findall(r"\d+", number)[:3]]
    major, minor, patch = [*parts, 0, 0, 0][:3]
    return major, minor, patch


def version_problem(version: tuple[int, int, int], *, rrf_retriever: bool) -> str | None:
    """Why a cluster of `version` cannot serve Teller, or None: Teller needs
    `MIN_VERSION`, and `RRF_MIN_VERSION` for the `rrf` retriever."""
    if version < MIN_VERSION:
        number = ".".join(map(str, version))
        return f"Elasticsearch {number} is too old; Teller needs 8.12 or later"
    if rrf_retriever and version < RRF_MIN_VERSION:
        return (
            "TELLER_ELASTICSEARCH_FUSION=rrf_retriever needs Elasticsearch 8.16 or later; "
            "set it to 'client' to fuse in Teller"
        )
    return None


def rrf_licence_problem(licence_type: str | None) -> str | None:
    """Why a cluster with this licence cannot run the `rrf` retriever, or None."""
    if licence_type in RRF_LICENCES:
        return None
    return (
        f"the cluster's '{licence_type}' licence does not include the rrf "
        "retriever; set TELLER_ELASTICSEARCH_FUSION=client to fuse in Teller"
    )


def alias_problem(alias: str, indices: Sequence[str], *, plain_index: bool) -> str | None:
    """Why `alias` cannot serve as Teller's alias, or None. `indices` are the indices
    behind it; `plain_index` says a concrete index has the alias's name."""
    if plain_index:
        return (
            f"'{alias}' is a plain index, not an alias; run `teller reindex` to "
            "move its chunks to a versioned index behind an alias of that name"
        )
    if len(indices) > 1:
        return (
            f"the alias '{alias}' points at several indices ({', '.join(indices)}); "
            "remove all but one with POST _aliases, or run `teller reindex`"
        )
    return None
