"""Parsers that turn uploaded files into `ParsedDocument`s.

`parse_bytes` dispatches on the file extension (falling back to the content type).
Every parser keeps the heading structure it can find as `Section` paths, runs
`normalize_metadata` on what it extracts, and converts library errors into the
retrieval error tree with a message naming the file and, for records, the line or row.

Modules: `dispatch` (`parse_bytes`), `markup` (Markdown, HTML), `pdf`, `records`
(CSV, JSON, JSON Lines, BEIR), `text` (plain text and shared helpers), `metadata`.
"""

from __future__ import annotations

from retrieval.parsing.dispatch import SUPPORTED_EXTENSIONS, parse_bytes
from retrieval.parsing.metadata import normalize_metadata
from retrieval.parsing.records import load_beir_corpus
from retrieval.parsing.text import (
    derive_doc_id,
    has_control_characters,
    printable,
    printable_document,
)

__all__ = [
    "SUPPORTED_EXTENSIONS",
    "derive_doc_id",
    "has_control_characters",
    "load_beir_corpus",
    "normalize_metadata",
    "parse_bytes",
    "printable",
    "printable_document",
]
