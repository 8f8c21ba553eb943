"""Records: CSV, JSON, JSON Lines and BEIR corpora, one document per record."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from retrieval.errors import DocumentParseError, EmptyDocumentError
from retrieval.parsing.metadata import normalized
from retrieval.types import ParsedDocument, Section

_ID_FIELDS = ("id", "_id", "doc_id")
_TITLE_FIELDS = ("title", "name", "question")
_TEXT_FIELDS = ("text", "body", "content", "answer")


def parse_csv(name: str, text: str) -> list[ParsedDocument]:
    """One document per row; the delimiter is the header's most frequent of ``,;\t|``."""
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


def parse_jsonl(name: str, text: str) -> list[ParsedDocument]:
    """One document per non-blank line, each a JSON object."""
    documents = []
    for number, line in enumerate(text.split("\n"), start=1):
        if line.strip():
            where = f"{name} line {number}"
            documents.append(_record(where, _load_json_line(where, line), f"{name}#line={number}"))
    return documents


def parse_json(name: str, text: str) -> list[ParsedDocument]:
    """One document for an object, one per element for an array of objects."""
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
                metadata=normalized(where, record),
                doc_id=str(doc_id),
                source=f"{path.name}#line={number}",
            )


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
        metadata=normalized(where, metadata),
        doc_id=doc_id,
        source=source,
    )
