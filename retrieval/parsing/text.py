"""Plain text, and the helpers every parser shares: decoding, unwrapping, documents, ids."""

from __future__ import annotations

import dataclasses
import hashlib
import re
import unicodedata
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

from retrieval.errors import DocumentParseError, EmptyDocumentError
from retrieval.parsing.metadata import normalized
from retrieval.types import ParsedDocument, Section

_LIST_MARKER = re.compile(r"^(?:[-*•◦▪]|\d{1,3}[.)]|[a-z][.)])\s")
# C0 control characters but tab, newline and carriage return, and DEL. PDF extraction
# and pasted text bring them; PostgreSQL refuses NUL in text and JSON columns outright.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def printable(text: str) -> str:
    """`text` without control characters other than tab and line breaks: NUL is
    dropped, the others (form feeds, vertical tabs, ...) separate words, so they
    become spaces."""
    return _CONTROL.sub(lambda m: "" if m.group() == "\x00" else " ", text)


def has_control_characters(text: str) -> bool:
    """Whether `text` holds a character `printable` would remove (ids must not)."""
    return _CONTROL.search(text) is not None


def printable_document(doc: ParsedDocument) -> ParsedDocument:
    """`doc` with `printable` applied to its title, headings, text, source and string
    metadata (not its id: an id is refused, never changed)."""
    return dataclasses.replace(
        doc,
        title=printable(doc.title),
        sections=tuple(
            Section(tuple(printable(p) for p in s.path), printable(s.text)) for s in doc.sections
        ),
        metadata=_printable_value(dict(doc.metadata)),
        source=printable(doc.source),
    )


def _printable_value(value: Any) -> Any:
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, dict):
        return {
            printable(k) if isinstance(k, str) else k: _printable_value(v) for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return type(value)(_printable_value(v) for v in value)
    return value


def parse_text(name: str, text: str) -> ParsedDocument:
    """A plain-text file; a short first line followed by a blank line is its title."""
    lines = text.strip("\n").split("\n")
    title = stem(name)
    first = lines[0].strip()
    rest = "\n".join(lines[1:])
    if len(lines) > 2 and 0 < len(first) <= 100 and not lines[1].strip() and rest.strip():
        title, text = first, rest
    body = unwrap(text)
    return document(name, title=title, sections=(Section((), body),) if body else ())


def unwrap(text: str) -> str:
    """Join hard-wrapped lines: a line continues the previous one when that one has no
    closing punctuation and this one starts in lower case and is not a list item."""
    lines: list[str] = []
    joinable = False
    for raw in text.split("\n"):
        line = " ".join(raw.split())
        if not line:
            joinable = False
            continue
        if joinable and line[0].islower() and not _LIST_MARKER.match(line):
            lines[-1] = f"{lines[-1]} {line}"
        else:
            lines.append(line)
        joinable = lines[-1][-1] not in ".!?:;"
    return "\n".join(lines)


def decode_text(name: str, data: bytes) -> str:
    """`data` as text (UTF-8, with or without BOM, or UTF-16 with BOM), newlines as ``\n``."""
    encoding = "utf-16" if data.startswith((b"\xff\xfe", b"\xfe\xff")) else "utf-8-sig"
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise DocumentParseError(
            f"{name} is not UTF-8 text (byte 0x{data[exc.start]:02x} on line {line}); "
            "save it as UTF-8 and upload it again."
        ) from exc
    return text.replace("\r\n", "\n").replace("\r", "\n")


def document(
    name: str,
    *,
    title: str,
    sections: tuple[Section, ...],
    metadata: Mapping[str, Any] | None = None,
    doc_id: str | None = None,
) -> ParsedDocument:
    """A `ParsedDocument` from a single-file parser, its metadata normalised; raises
    `EmptyDocumentError` when there are no sections."""
    if not sections:
        raise EmptyDocumentError(f"{name} has no text to index.")
    return ParsedDocument(
        title=title,
        sections=sections,
        metadata=normalized(name, metadata or {}),
        doc_id=doc_id,
        source=name,
    )


def derive_doc_id(source: str) -> str:
    """Derive a stable document id from a file name: the slug of its stem.

    ``"Fee Schedule 2026.pdf"`` gives ``"fee-schedule-2026"``; a ``#row=3`` suffix is kept
    (``"faq-row-3"``) so records of one file get distinct ids. Names with no ASCII letters
    or digits get ``"doc-"`` plus a short hash.
    """
    base, _, fragment = source.partition("#")
    file_stem = PurePath(base.replace("\\", "/")).stem
    slug = _slug(" ".join(part for part in (file_stem, fragment) if part))
    if slug:
        return slug[:100].rstrip("-")
    return "doc-" + hashlib.sha256(source.encode("utf-8")).hexdigest()[:12]


def _slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")


def stem(name: str) -> str:
    """The file name without folders and extension (for titles)."""
    return PurePath(name.replace("\\", "/")).stem.strip() or name
