"""What the embedded index stores per chunk: the tantivy schema, the in-memory record
used for filtering and hydrating hits, and its stored payload."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import tantivy

from retrieval.analysis import ANALYZER_NAME
from retrieval.types import IndexedChunk, SearchFilters

NO_START = dt.date.min.toordinal()
NO_END = dt.date.max.toordinal()


@dataclass(frozen=True, slots=True)
class Record:
    doc_id: str
    version: int
    ordinal: int
    title: str
    section_path: tuple[str, ...]
    text: str
    metadata: Mapping[str, Any]
    product: str | None
    document_type: str | None
    valid_from: int
    valid_until: int

    def matches(self, filters: SearchFilters) -> bool:
        if filters.product is not None and self.product != filters.product.lower():
            return False
        if (
            filters.document_type is not None
            and self.document_type != filters.document_type.lower()
        ):
            return False
        if filters.valid_on is not None:
            day = filters.valid_on.toordinal()
            if not self.valid_from <= day <= self.valid_until:
                return False
        return True


def day_number(value: Any, default: int) -> int:
    if value in (None, ""):
        return default
    if isinstance(value, dt.datetime):
        return value.date().toordinal()
    if isinstance(value, dt.date):
        return value.toordinal()
    return dt.date.fromisoformat(str(value)[:10]).toordinal()


def record_for(chunk: IndexedChunk) -> Record:
    meta = chunk.metadata
    product = meta.get("product")
    doc_type = meta.get("document_type")
    return Record(
        doc_id=chunk.doc_id,
        version=chunk.version,
        ordinal=chunk.ordinal,
        title=chunk.title,
        section_path=tuple(chunk.section_path),
        text=chunk.text,
        metadata=dict(meta),
        product=str(product).lower() if product else None,
        document_type=str(doc_type).lower() if doc_type else None,
        valid_from=day_number(meta.get("effective_from"), NO_START),
        valid_until=day_number(meta.get("effective_until"), NO_END),
    )


def payload(rec: Record) -> bytes:
    return json.dumps(
        {
            "doc_id": rec.doc_id,
            "version": rec.version,
            "ordinal": rec.ordinal,
            "title": rec.title,
            "section_path": list(rec.section_path),
            "text": rec.text,
            "metadata": rec.metadata,
        },
        ensure_ascii=False,
        default=str,
    ).encode()


def build_schema() -> tantivy.Schema:
    sb = tantivy.SchemaBuilder()
    sb.add_integer_field("key", stored=True, indexed=True, fast=True)
    sb.add_text_field("body", stored=False, tokenizer_name=ANALYZER_NAME)
    sb.add_text_field("product", stored=False, tokenizer_name="raw")
    sb.add_text_field("document_type", stored=False, tokenizer_name="raw")
    sb.add_integer_field("valid_from", indexed=True, fast=True)
    sb.add_integer_field("valid_until", indexed=True, fast=True)
    sb.add_bytes_field("payload", stored=True)
    return sb.build()


def load_records(searcher: tantivy.Searcher) -> dict[int, Record]:
    total = searcher.num_docs
    records: dict[int, Record] = {}
    if total == 0:
        return records
    for _, address in searcher.search(tantivy.Query.all_query(), total, count=False).hits:
        doc = searcher.doc(address)
        key = int(doc["key"][0])
        data = json.loads(bytes(doc["payload"][0]))
        chunk = IndexedChunk(
            key=key,
            doc_id=data["doc_id"],
            version=data["version"],
            ordinal=data["ordinal"],
            title=data["title"],
            section_path=tuple(data["section_path"]),
            text=data["text"],
            context="",
            metadata=data["metadata"],
        )
        records[key] = record_for(chunk)
    return records
