"""`parse_bytes`: picks the parser from the file extension (else the content type)."""

from __future__ import annotations

from pathlib import PurePath

from retrieval.errors import DocumentTooLargeError, EmptyDocumentError, UnsupportedFormatError
from retrieval.parsing.markup import parse_html, parse_markdown
from retrieval.parsing.pdf import parse_pdf
from retrieval.parsing.records import parse_csv, parse_json, parse_jsonl
from retrieval.parsing.text import decode_text, parse_text
from retrieval.types import ParsedDocument

_MB = 1024 * 1024
_FORMATS_BY_EXTENSION = {
    ".md": "markdown",
    ".markdown": "markdown",
    ".html": "html",
    ".htm": "html",
    ".txt": "text",
    ".pdf": "pdf",
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".json": "json",
}
_FORMATS_BY_CONTENT_TYPE = {
    "text/markdown": "markdown",
    "text/x-markdown": "markdown",
    "text/html": "html",
    "application/xhtml+xml": "html",
    "text/plain": "text",
    "application/pdf": "pdf",
    "text/csv": "csv",
    "application/csv": "csv",
    "application/jsonl": "jsonl",
    "application/x-jsonlines": "jsonl",
    "application/x-ndjson": "jsonl",
    "application/json": "json",
}
SUPPORTED_EXTENSIONS: tuple[str, ...] = tuple(sorted(_FORMATS_BY_EXTENSION))
"""File extensions `parse_bytes` accepts, lower-case with the leading dot."""


def parse_bytes(
    name: str,
    data: bytes,
    *,
    content_type: str | None = None,
    max_bytes: int = 20 * _MB,
) -> list[ParsedDocument]:
    """Parse an uploaded file into documents (one, or one per record for CSV/JSON/JSONL).

    The format comes from the extension of `name`, else from `content_type`. Raises
    `DocumentTooLargeError` over `max_bytes`, `UnsupportedFormatError` for an unknown
    type, `EmptyDocumentError` when there is no text, `DocumentParseError` otherwise.
    """
    kind = _detect_format(name, content_type)
    if len(data) > max_bytes:
        raise DocumentTooLargeError(
            f"{name} is {_megabytes(len(data))} MB, over the {_megabytes(max_bytes)} MB "
            "upload limit; split it into smaller files."
        )
    if not data.removeprefix(b"\xef\xbb\xbf").strip():
        raise EmptyDocumentError(f"{name} is empty; there is no text to index.")
    if kind == "pdf":
        return [parse_pdf(name, data)]
    if kind == "html":  # BeautifulSoup honours the page's own <meta charset>
        return [parse_html(name, data)]
    text = decode_text(name, data)
    if not text.strip():
        raise EmptyDocumentError(f"{name} is empty; there is no text to index.")
    if kind == "markdown":
        return [parse_markdown(name, text)]
    if kind == "text":
        return [parse_text(name, text)]
    if kind == "csv":
        return parse_csv(name, text)
    if kind == "jsonl":
        return parse_jsonl(name, text)
    return parse_json(name, text)


def _detect_format(name: str, content_type: str | None) -> str:
    extension = PurePath(name).suffix.lower()
    if extension in _FORMATS_BY_EXTENSION:
        return _FORMATS_BY_EXTENSION[extension]
    if content_type:
        media_type = content_type.split(";", 1)[0].strip().lower()
        if media_type in _FORMATS_BY_CONTENT_TYPE:
            return _FORMATS_BY_CONTENT_TYPE[media_type]
    found = f"'{extension}'" if extension else "no extension"
    raise UnsupportedFormatError(
        f"Cannot ingest {name}: unsupported file type ({found}). "
        f"Supported types: {', '.join(SUPPORTED_EXTENSIONS)}."
    )


def _megabytes(size: int) -> str:
    return f"{size / _MB:.2f}".rstrip("0").rstrip(".")
