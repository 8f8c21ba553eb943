"""Compatibility module: the parsers live in the `retrieval.parsing` package."""

from __future__ import annotations

from retrieval.parsing import (
    SUPPORTED_EXTENSIONS,
    derive_doc_id,
    load_beir_corpus,
    normalize_metadata,
    parse_bytes,
)

__all__ = [
    "SUPPORTED_EXTENSIONS",
    "derive_doc_id",
    "load_beir_corpus",
    "normalize_metadata",
    "parse_bytes",
]
