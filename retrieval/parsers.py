"""Parsers that turn uploaded files into `ParsedDocument`s.

`parse_bytes` dispatches on the file extension (falling back to the content type).
Every parser keeps the heading structure it can find as `Section` paths, runs
`normalize_metadata` on what it extracts, and converts library errors into the
retrieval error tree with a message naming the file and, for records, the line or row.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import re
import unicodedata
from collections.abc import Iterator, Mapping
from pathlib import Path, PurePath
from typing import Any

import yaml
from bs4 import BeautifulSoup, NavigableString, Tag
from markdown_it import MarkdownIt
from markdown_it.token import Token
from pypdf import PdfReader

from retrieval.errors import (
    DocumentParseError,
    DocumentTooLargeError,
    EmptyDocumentError,
    UnsupportedFormatError,
)
from retrieval.types import ParsedDocument, Section

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

_ID_FIELDS = ("id", "_id", "doc_id")
_TITLE_FIELDS = ("title", "name", "question")
_TEXT_FIELDS = ("text", "body", "content", "answer")

_METADATA_ALIASES = {"doc_type": "document_type", "type": "document_type"}
_LOWERED_FIELDS = ("product", "document_type")
_DATE_FIELDS = ("effective_from", "effective_until")
_CANONICAL_FIELDS = frozenset((*_LOWERED_FIELDS, *_DATE_FIELDS))
_DATE_FORMATS = ("%Y/%m/%d", "%d %B %Y", "%d %b %Y", "%B %d, %Y", "%b %d, %Y")

_HTML_DROPPED = ("script", "style", "nav", "footer", "header", "noscript", "template")
_HTML_HEADINGS = {f"h{level}": level for level in range(1, 7)}
_HTML_BLOCKS = frozenset(
    {
        *("address", "article", "aside", "blockquote", "body", "caption", "dd", "details"),
        *("dialog", "div", "dl", "dt", "fieldset", "figcaption", "figure", "form", "hr"),
        *("html", "li", "main", "ol", "p", "section", "summary", "table", "tbody", "tfoot"),
        *("thead", "ul"),
    }
)
_HTML_META_FIELDS = frozenset((*_CANONICAL_FIELDS, *_METADATA_ALIASES))

_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?)^(?:---|\.\.\.)[ \t]*$\n?", re.DOTALL | re.MULTILINE)
_TAG = re.compile(r"<!--.*?-->|<[^>]*>", re.DOTALL)
_LIST_MARKER = re.compile(r"^(?:[-*•◦▪]|\d{1,3}[.)]|[a-z][.)])\s")


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
        return [_parse_pdf(name, data)]
    if kind == "html":  # BeautifulSoup honours the page's own <meta charset>
        return [_parse_html(name, data)]
    text = _decode(name, data)
    if not text.strip():
        raise EmptyDocumentError(f"{name} is empty; there is no text to index.")
    if kind == "markdown":
        return [_parse_markdown(name, text)]
    if kind == "text":
        return [_parse_text(name, text)]
    if kind == "csv":
        return _parse_csv(name, text)
    if kind == "jsonl":
        return _parse_jsonl(name, text)
    return _parse_json(name, text)


def normalize_metadata(meta: Mapping[str, Any]) -> dict[str, Any]:
    """Return a cleaned copy of `meta` that filters can rely on.

    `doc_type`/`type` become `document_type` (an explicit `document_type` wins);
    `product` and `document_type` are lower-cased with whitespace collapsed;
    `effective_from`/`effective_until` become ISO ``YYYY-MM-DD`` strings (empty ones are
    dropped); other date values become ISO strings so the result is JSON-serialisable.
    Raises `DocumentParseError` for an unreadable date or an inverted validity range.
    """
    result: dict[str, Any] = {}
    # Canonical spellings first so that an alias never overwrites them.
    ordered = sorted(meta.items(), key=lambda item: _canonical_key(item[0]) != item[0])
    for raw_key, value in ordered:
        key = _canonical_key(raw_key)
        if key in result and key in _CANONICAL_FIELDS:
            continue
        if key in _LOWERED_FIELDS:
            if value is None or (isinstance(value, str) and not value.strip()):
                continue
            if isinstance(value, list | dict | tuple):
                raise DocumentParseError(f"{key} must be a single value, not {value!r}")
            result[key] = " ".join(str(value).split()).lower()
        elif key in _DATE_FIELDS:
            if value is None or (isinstance(value, str) and not value.strip()):
                continue
            result[key] = _parse_date(key, value).isoformat()
        else:
            result[key] = _jsonable(value)
    start, end = result.get("effective_from"), result.get("effective_until")
    if start and end and end < start:
        raise DocumentParseError(
            f"effective_until ({end}) is before effective_from ({start}); check the dates."
        )
    return result


def load_beir_corpus(directory: Path) -> Iterator[ParsedDocument]:
    """Yield one document per line of a BEIR ``corpus.jsonl`` in `directory`.

    `_id` becomes `doc_id`; `title` (may be empty) and `text` are read; every other field
    goes to metadata (the keys of a nested ``metadata`` object are merged in). A missing
    file raises `DocumentParseError` at once; a bad line raises it, with the line number,
    when iteration reaches it.
    """
    path = Path(directory) / "corpus.jsonl"
    if not path.is_file():
        raise DocumentParseError(f"{path} not found; a BEIR corpus directory holds corpus.jsonl.")
    return _read_beir_corpus(path)


def _read_beir_corpus(path: Path) -> Iterator[ParsedDocument]:
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            where = f"{path.name} line {number}"
            try:
                line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                raise DocumentParseError(f"{where} is not UTF-8: {exc.reason}") from exc
            if not line.strip():
                continue
            record = _load_json_line(where, line)
            doc_id, title = record.pop("_id", None), record.pop("title", None)
            text = record.pop("text", None)
            if doc_id is None or str(doc_id).strip() == "":
                raise DocumentParseError(f"{where} has no _id.")
            if not isinstance(text, str):
                raise DocumentParseError(f"{where} has no text (a string field named 'text').")
            nested = record.pop("metadata", None)
            if isinstance(nested, Mapping):
                record = {**nested, **record}
            elif nested is not None:
                record["metadata"] = nested
            yield ParsedDocument(
                title=str(title or "").strip(),
                sections=(Section((), text.strip()),) if text.strip() else (),
                metadata=_normalized(where, record),
                doc_id=str(doc_id),
                source=f"{path.name}#line={number}",
            )


def derive_doc_id(source: str) -> str:
    """Derive a stable document id from a file name: the slug of its stem.

    ``"Fee Schedule 2026.pdf"`` gives ``"fee-schedule-2026"``; a ``#row=3`` suffix is kept
    (``"faq-row-3"``) so records of one file get distinct ids. Names with no ASCII letters
    or digits get ``"doc-"`` plus a short hash.
    """
    base, _, fragment = source.partition("#")
    stem = PurePath(base.replace("\\", "/")).stem
    slug = _slug(" ".join(part for part in (stem, fragment) if part))
    if slug:
        return slug[:100].rstrip("-")
    return "doc-" + hashlib.sha256(source.encode("utf-8")).hexdigest()[:12]


# --- dispatch and decoding -------------------------------------------------------------


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


def _decode(name: str, data: bytes) -> str:
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


def _megabytes(size: int) -> str:
    return f"{size / _MB:.2f}".rstrip("0").rstrip(".")


# --- structured text ---------------------------------------------------------------------


class _SectionBuilder:
    """Collects lines under the current heading path."""

    def __init__(self) -> None:
        self._stack: list[tuple[int, str]] = []
        self._lines: list[str] = []
        self._sections: list[Section] = []
        self.first_h1: str | None = None

    def heading(self, level: int, text: str) -> None:
        text = " ".join(text.split())
        if not text:
            return
        self._flush()
        while self._stack and self._stack[-1][0] >= level:
            self._stack.pop()
        self._stack.append((level, text))
        if level == 1 and self.first_h1 is None:
            self.first_h1 = text

    def line(self, text: str) -> None:
        for part in text.split("\n"):
            part = " ".join(part.split())
            if part:
                self._lines.append(part)

    def finish(self) -> tuple[Section, ...]:
        self._flush()
        return tuple(self._sections)

    def _flush(self) -> None:
        if self._lines:
            path = tuple(text for _, text in self._stack)
            self._sections.append(Section(path, "\n".join(self._lines)))
            self._lines = []


def _parse_markdown(name: str, text: str) -> ParsedDocument:
    front: dict[str, Any] = {}
    match = _FRONT_MATTER.match(text)
    if match:
        front = _load_front_matter(name, match.group(1))
        text = text[match.end() :]
    builder = _SectionBuilder()
    parser = MarkdownIt("commonmark").enable("table")
    heading_level: int | None = None
    row: list[str] | None = None
    for token in parser.parse(text):
        if token.type == "heading_open":
            heading_level = int(token.tag[1:])
        elif token.type == "inline":
            content = _inline_text(token)
            if heading_level is not None:
                builder.heading(heading_level, content)
                heading_level = None
            elif row is not None:
                row.append(" ".join(content.split()))
            else:
                builder.line(content)
        elif token.type == "tr_open":
            row = []
        elif token.type == "tr_close" and row is not None:
            builder.line(" | ".join(cell for cell in row if cell))
            row = None
        elif token.type in ("fence", "code_block"):
            builder.line(token.content)
        elif token.type == "html_block":
            builder.line(_TAG.sub(" ", token.content))
    title = front.pop("title", None)
    doc_id = front.pop("id", None) or front.pop("doc_id", None)
    return _document(
        name,
        title=str(title).strip() if title else builder.first_h1 or _stem(name),
        sections=builder.finish(),
        metadata=front,
        doc_id=str(doc_id) if doc_id is not None else None,
    )


def _load_front_matter(name: str, block: str) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(block)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 2})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise DocumentParseError(
            f"{name}: the front matter is not valid YAML{where}: {problem}"
        ) from exc
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise DocumentParseError(
            f"{name}: the front matter must be a mapping of keys to values, "
            f"not {type(loaded).__name__}."
        )
    return {str(key): value for key, value in loaded.items()}


def _inline_text(token: Token) -> str:
    parts: list[str] = []
    for child in token.children or []:
        if child.type in ("text", "code_inline", "image"):
            parts.append(child.content)
        elif child.type == "softbreak":
            parts.append(" ")
        elif child.type == "hardbreak":
            parts.append("\n")
    return "".join(parts)


def _parse_html(name: str, data: bytes) -> ParsedDocument:
    soup = BeautifulSoup(data, "lxml")
    metadata = {}
    for meta in soup.find_all("meta"):
        key = str(meta.get("name") or "").strip().lower()
        content = meta.get("content")
        if key in _HTML_META_FIELDS and isinstance(content, str):
            metadata[key] = content
    title_tag = soup.find("title")
    title = " ".join(title_tag.get_text(" ").split()) if title_tag else ""
    for tag in soup.find_all(list(_HTML_DROPPED)):
        # A <header> inside an article holds its heading; only page-level ones are chrome.
        if tag.name != "header" or tag.find_parent(["article", "main"]) is None:
            tag.decompose()
    builder = _SectionBuilder()
    root = soup.body or soup
    buffer: list[str] = []
    _walk_html(root, builder, buffer)
    _flush_inline(builder, buffer)
    return _document(
        name,
        title=title or builder.first_h1 or _stem(name),
        sections=builder.finish(),
        metadata=metadata,
    )


def _walk_html(node: Tag, builder: _SectionBuilder, buffer: list[str]) -> None:
    """Emit block elements as lines; inline text accumulates in `buffer` until the next
    block boundary (HTML source newlines are only whitespace)."""
    for child in node.children:
        if isinstance(child, NavigableString):
            if type(child) is NavigableString:  # skips comments, CDATA, doctypes
                buffer.append(str(child))
            continue
        if not isinstance(child, Tag):
            continue
        tag = child.name
        if tag in _HTML_HEADINGS or tag in ("tr", "pre", "br") or tag in _HTML_BLOCKS:
            _flush_inline(builder, buffer)
        if tag in _HTML_HEADINGS:
            builder.heading(_HTML_HEADINGS[tag], child.get_text(" "))
        elif tag == "tr":
            cells = (" ".join(cell.get_text(" ").split()) for cell in child.find_all(["td", "th"]))
            builder.line(" | ".join(cell for cell in cells if cell))
        elif tag == "pre":
            builder.line(child.get_text())
        else:
            _walk_html(child, builder, buffer)
            if tag in _HTML_BLOCKS:
                _flush_inline(builder, buffer)


def _flush_inline(builder: _SectionBuilder, buffer: list[str]) -> None:
    builder.line(" ".join("".join(buffer).split()))
    buffer.clear()


# --- plain text and PDF ------------------------------------------------------------------


def _parse_text(name: str, text: str) -> ParsedDocument:
    lines = text.strip("\n").split("\n")
    title = _stem(name)
    first = lines[0].strip()
    rest = "\n".join(lines[1:])
    if len(lines) > 2 and 0 < len(first) <= 100 and not lines[1].strip() and rest.strip():
        title, text = first, rest
    body = _unwrap(text)
    return _document(name, title=title, sections=(Section((), body),) if body else ())


def _unwrap(text: str) -> str:
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


def _parse_pdf(name: str, data: bytes) -> ParsedDocument:
    if b"%PDF-" not in data[:1024]:
        raise DocumentParseError(
            f"{name} could not be read as a PDF: it does not start with a PDF header."
        )
    # pypdf is lenient with a missing %%EOF and would return half a document.
    if b"%%EOF" not in data:
        raise DocumentParseError(
            f"{name} could not be read as a PDF: it has no %%EOF end marker, so it was "
            "probably truncated; upload the complete file."
        )
    sections: list[Section] = []
    title = ""
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise DocumentParseError(
                f"{name} could not be read as a PDF: it is password-protected; "
                "remove the password and upload it again."
            )
        if reader.metadata is not None and reader.metadata.title:
            title = " ".join(str(reader.metadata.title).split())
        for number, page in enumerate(reader.pages, start=1):
            page_text = _unwrap(page.extract_text() or "")
            if page_text:
                sections.append(Section((f"Page {number}",), page_text))
    except DocumentParseError:
        raise
    except Exception as exc:  # pypdf raises many exception types on malformed input
        raise DocumentParseError(f"{name} could not be read as a PDF: {exc}") from exc
    if not sections:
        raise EmptyDocumentError(
            f"{name} has no extractable text (it may be a scanned image); OCR is not "
            "supported, so upload a PDF with a text layer."
        )
    if not title:
        first_line = sections[0].text.split("\n", 1)[0]
        title = first_line if len(first_line) <= 120 else _stem(name)
    return _document(name, title=title, sections=tuple(sections))


# --- records: CSV, JSON Lines, JSON ------------------------------------------------------


def _parse_csv(name: str, text: str) -> list[ParsedDocument]:
    header_line = text.lstrip("\n").split("\n", 1)[0]
    delimiter = max(",;\t|", key=header_line.count)
    reader = csv.DictReader(io.StringIO(text), delimiter=delimiter)
    try:
        columns = [str(column).strip() for column in reader.fieldnames or []]
        if not {column.lower() for column in columns} & set(_TEXT_FIELDS):
            raise DocumentParseError(
                f"{name} has no text column; found columns: {', '.join(columns) or 'none'}. "
                f"Name the column holding the text one of: {', '.join(_TEXT_FIELDS)}."
            )
        documents = []
        for row_number, row in enumerate(reader, start=1):
            where = f"{name} row {row_number} (line {reader.line_num})"
            if None in row:
                raise DocumentParseError(f"{where} has more fields than the header.")
            record = {
                str(key).strip(): value
                for key, value in row.items()
                if value is not None and value.strip()
            }
            if record:
                documents.append(_record(where, record, f"{name}#row={row_number}"))
    except csv.Error as exc:
        raise DocumentParseError(f"{name} line {reader.line_num} is not valid CSV: {exc}") from exc
    if not documents:
        raise EmptyDocumentError(f"{name} has a header but no rows.")
    return documents


def _parse_jsonl(name: str, text: str) -> list[ParsedDocument]:
    documents = []
    for number, line in enumerate(text.split("\n"), start=1):
        if line.strip():
            where = f"{name} line {number}"
            documents.append(_record(where, _load_json_line(where, line), f"{name}#line={number}"))
    return documents


def _parse_json(name: str, text: str) -> list[ParsedDocument]:
    try:
        loaded = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DocumentParseError(
            f"{name} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})."
        ) from exc
    if isinstance(loaded, dict):
        return [_record(name, loaded, name)]
    if not isinstance(loaded, list):
        raise DocumentParseError(f"{name} must hold an object or an array of objects.")
    if not loaded:
        raise EmptyDocumentError(f"{name} is an empty array; there is no text to index.")
    documents = []
    for number, item in enumerate(loaded, start=1):
        where = f"{name} record {number}"
        if not isinstance(item, dict):
            raise DocumentParseError(f"{where} is not an object.")
        documents.append(_record(where, item, f"{name}#row={number}"))
    return documents


def _load_json_line(where: str, line: str) -> dict[str, Any]:
    try:
        loaded = json.loads(line)
    except json.JSONDecodeError as exc:
        raise DocumentParseError(
            f"{where} is not valid JSON: {exc.msg} (column {exc.colno})."
        ) from exc
    if not isinstance(loaded, dict):
        raise DocumentParseError(f"{where} is not a JSON object.")
    return loaded


def _record(where: str, record: Mapping[str, Any], source: str) -> ParsedDocument:
    """Map one record's fields to a document: id, title, text, and the rest as metadata."""
    by_name = {str(key).strip().lower(): key for key in record}
    used: set[Any] = set()

    def first(names: tuple[str, ...], kind: str) -> str | None:
        for field_name in names:
            key = by_name.get(field_name)
            if key is None or key in used:
                continue
            value = record[key]
            if value is None or (isinstance(value, str) and not value.strip()):
                continue
            if isinstance(value, bool) or not isinstance(value, str | int | float):
                raise DocumentParseError(f"{where}: the {kind} field '{key}' must be a string.")
            used.add(key)
            return str(value).strip()
        return None

    text = first(_TEXT_FIELDS, "text")
    if text is None:
        raise DocumentParseError(
            f"{where} has no text; expected a value in one of: {', '.join(_TEXT_FIELDS)}."
        )
    doc_id = first(_ID_FIELDS, "id")
    title = first(_TITLE_FIELDS, "title") or ""
    metadata = {str(key).strip(): value for key, value in record.items() if key not in used}
    return ParsedDocument(
        title=title,
        sections=(Section((), text),),
        metadata=_normalized(where, metadata),
        doc_id=doc_id,
        source=source,
    )


# --- shared helpers ----------------------------------------------------------------------


def _document(
    name: str,
    *,
    title: str,
    sections: tuple[Section, ...],
    metadata: Mapping[str, Any] | None = None,
    doc_id: str | None = None,
) -> ParsedDocument:
    if not sections:
        raise EmptyDocumentError(f"{name} has no text to index.")
    return ParsedDocument(
        title=title,
        sections=sections,
        metadata=_normalized(name, metadata or {}),
        doc_id=doc_id,
        source=name,
    )


def _normalized(where: str, metadata: Mapping[str, Any]) -> dict[str, Any]:
    try:
        return normalize_metadata(metadata)
    except DocumentParseError as exc:
        raise DocumentParseError(f"{where}: {exc}") from exc


def _canonical_key(key: str) -> str:
    lowered = str(key).strip().lower()
    if lowered in _CANONICAL_FIELDS:
        return lowered
    return _METADATA_ALIASES.get(lowered, str(key).strip())


def _parse_date(field_name: str, value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        text = value.strip()
        for parse in (dt.date.fromisoformat, lambda s: dt.datetime.fromisoformat(s).date()):
            try:
                return parse(text)
            except ValueError:
                pass
        for date_format in _DATE_FORMATS:
            try:
                return dt.datetime.strptime(text, date_format).date()
            except ValueError:
                pass
    raise DocumentParseError(f"{field_name}: cannot read {value!r} as a date; use YYYY-MM-DD.")


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.date):  # datetime included
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    return value


def _slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")


def _stem(name: str) -> str:
    return PurePath(name.replace("\\", "/")).stem.strip() or name
