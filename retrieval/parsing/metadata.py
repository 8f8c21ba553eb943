"""Metadata normalisation: canonical field names, lower-cased keywords, ISO dates."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from retrieval.errors import DocumentParseError

METADATA_ALIASES = {"doc_type": "document_type", "type": "document_type"}
_LOWERED_FIELDS = ("product", "document_type")
_DATE_FIELDS = ("effective_from", "effective_until")
CANONICAL_FIELDS = frozenset((*_LOWERED_FIELDS, *_DATE_FIELDS))
_DATE_FORMATS = ("%Y/%m/%d", "%d %B %Y", "%d %b %Y", "%B %d, %Y", "%b %d, %Y")


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
        if key in result and key in CANONICAL_FIELDS:
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


def normalized(where: str, metadata: Mapping[str, Any]) -> dict[str, Any]:
    """`normalize_metadata`, with `where` (file, row or line) prefixed to its errors."""
    try:
        return normalize_metadata(metadata)
    except DocumentParseError as exc:
        raise DocumentParseError(f"{where}: {exc}") from exc


def _canonical_key(key: str) -> str:
    lowered = str(key).strip().lower()
    if lowered in CANONICAL_FIELDS:
        return lowered
    return METADATA_ALIASES.get(lowered, str(key).strip())


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
