"""Parsing and validating rate sheets (CSV or JSON), and loading them into the database.

CSV header: `product,term,tier,rate_percent,apr_percent,apy_percent,effective_from,
effective_until,source`. `term`, `tier`, `apr_percent`, `apy_percent` and
`effective_until` may be empty or left out; the others are required. JSON: a list of
objects with the same keys, or `{"rates": [...]}`.

A sheet is all or nothing: any invalid row rejects the whole file with a
`RateSheetError` naming the row (1-based data row, plus the CSV line) and the problem.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import re
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal, InvalidOperation
from pathlib import PurePath
from typing import Any, Final

from sqlalchemy.orm import Session

from bot.rates.errors import MAX_REPORTED_ERRORS, RateSheetError, RowProblem
from db import audit
from db.audit import Actor
from db.rates import NewRateRow, RateSheetResult, insert_sheet
from retrieval.parsing import has_control_characters

REQUIRED_COLUMNS: Final = ("product", "rate_percent", "effective_from", "source")
OPTIONAL_COLUMNS: Final = ("term", "tier", "apr_percent", "apy_percent", "effective_until")
COLUMNS: Final = (
    "product",
    "term",
    "tier",
    "rate_percent",
    "apr_percent",
    "apy_percent",
    "effective_from",
    "effective_until",
    "source",
)
MAX_ROWS: Final = 10_000
_LIMITS: Final = {"product": 200, "term": 100, "tier": 200, "source": 1024}

_PERCENT = re.compile(r"^(?:\d+(?:\.\d+)?|\.\d+)$")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TERM = re.compile(
    r"^(?P<n>\d{1,3})\s*-?\s*(?P<unit>years?|yrs?|y|months?|mos?|m)\.?$", re.IGNORECASE
)

# One row of the sheet as read: its 1-based number, its last file line, its cells.
_RawRow = tuple[int, int | None, dict[str, str]]


def term_label(count: int, unit: str) -> tuple[str, int]:
    """The normalised term ("30 years", "1 year", "12 months") and its length in months.

    `unit` starts with "y" for years or "m" for months.
    """
    if unit.lower().startswith("y"):
        return f"{count} year{'s' if count != 1 else ''}", count * 12
    return f"{count} month{'s' if count != 1 else ''}", count


def parse_term(term: str) -> tuple[str, int | None]:
    """Normalise a term cell: "30-year" -> ("30 years", 360), "12 mo" -> ("12 months", 12).

    A term that does not look like a number of years or months is kept as given (spaces
    collapsed) with no length in months.
    """
    cleaned = " ".join(term.split())
    match = _TERM.match(cleaned)
    if match is None or int(match["n"]) == 0:
        return cleaned, None
    return term_label(int(match["n"]), match["unit"])


def _percent(value: str, column: str) -> str:
    cleaned = value.strip()
    if cleaned.endswith("%"):
        cleaned = cleaned[:-1].rstrip()
    if not _PERCENT.match(cleaned):
        raise ValueError(f"{column} {value!r} is not a decimal number between 0 and 100")
    try:
        number = Decimal(cleaned)
    except InvalidOperation as exc:  # pragma: no cover - the pattern already guarantees it
        raise ValueError(f"{column} {value!r} is not a decimal number") from exc
    if not Decimal(0) <= number <= Decimal(100):
        raise ValueError(f"{column} {value!r} is not between 0 and 100")
    if len(cleaned) > 32:
        raise ValueError(f"{column} {value!r} is longer than 32 characters")
    return cleaned


def _date(value: str, column: str) -> dt.date:
    cleaned = value.strip()
    try:
        if not _ISO_DATE.match(cleaned):
            raise ValueError(cleaned)
        return dt.date.fromisoformat(cleaned)
    except ValueError:
        raise ValueError(f"{column} {value!r} is not a date in YYYY-MM-DD form") from None


def _text(value: str, column: str) -> str:
    cleaned = " ".join(value.split())
    if has_control_characters(cleaned):
        raise ValueError(f"{column} contains a control character (such as NUL); retype it")
    if len(cleaned) > _LIMITS[column]:
        raise ValueError(
            f"{column} is {len(cleaned)} characters long; the limit is {_LIMITS[column]}"
        )
    return cleaned


_CONVERTERS: Final[dict[str, Callable[[str, str], object]]] = {
    "product": _text,
    "term": _text,
    "tier": _text,
    "rate_percent": _percent,
    "apr_percent": _percent,
    "apy_percent": _percent,
    "effective_from": _date,
    "effective_until": _date,
    "source": _text,
}


def _row(cells: Mapping[str, str]) -> tuple[NewRateRow | None, list[tuple[str | None, str]]]:
    """Validate one row's cells: the row, or the (column, message) problems found."""
    problems: list[tuple[str | None, str]] = []
    values: dict[str, Any] = {}
    for column in COLUMNS:
        raw = (cells.get(column) or "").strip()
        if not raw:
            values[column] = None
            if column in REQUIRED_COLUMNS:
                problems.append((column, f"{column} is empty"))
            continue
        try:
            values[column] = _CONVERTERS[column](raw, column)
        except ValueError as exc:
            problems.append((column, str(exc)))
    starts, ends = values.get("effective_from"), values.get("effective_until")
    if starts is not None and ends is not None and ends < starts:
        problems.append(
            ("effective_until", f"effective_until {ends} is before effective_from {starts}")
        )
    if problems:
        return None, problems
    term, months = parse_term(values["term"]) if values["term"] else (None, None)
    return (
        NewRateRow(
            product=values["product"].lower(),
            term=term,
            term_months=months,
            tier=values["tier"],
            rate_percent=values["rate_percent"],
            apr_percent=values["apr_percent"],
            apy_percent=values["apy_percent"],
            effective_from=values["effective_from"],
            effective_until=values["effective_until"],
            source=values["source"],
        ),
        [],
    )


def _check_columns(name: str, columns: list[str], *, what: str = "header") -> None:
    problems: list[RowProblem] = []
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        problems.append(
            RowProblem(
                f"missing required column{'s' if len(missing) > 1 else ''} "
                f"{', '.join(missing)}; the {what} must be {','.join(COLUMNS)}"
            )
        )
    unknown = [c for c in columns if c not in COLUMNS]
    if unknown:
        problems.append(
            RowProblem(
                f"unknown column{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}"
                f"; the columns are {','.join(COLUMNS)}"
            )
        )
    duplicated = sorted({c for c in columns if columns.count(c) > 1})
    if duplicated:
        problems.append(RowProblem(f"column {', '.join(duplicated)} appears more than once"))
    if problems:
        raise RateSheetError(name, problems)


def _csv_rows(name: str, text: str) -> Iterator[_RawRow]:
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    number = 0
    for cells in reader:
        if not any(cell.strip() for cell in cells):
            continue  # blank lines and rows of empty cells, as spreadsheets export them
        if header is None:
            header = [cell.strip().lower() for cell in cells]
            _check_columns(name, header)
            continue
        number += 1
        if len(cells) > len(header):
            extra = {"__extra__": f"{len(cells)} values for {len(header)} columns"}
            yield number, reader.line_num, extra
            continue
        yield number, reader.line_num, dict(zip(header, cells, strict=False))


def _json_rows(name: str, text: str) -> Iterator[_RawRow]:
    try:
        # Numbers are kept as written ("6.10" stays "6.10"), like CSV cells.
        document = json.loads(text, parse_float=str, parse_int=str)
    except json.JSONDecodeError as exc:
        raise RateSheetError(
            name, [RowProblem(f"not valid JSON (line {exc.lineno}): {exc.msg}")]
        ) from exc
    items = document.get("rates") if isinstance(document, dict) else document
    if not isinstance(items, list):
        raise RateSheetError(
            name, [RowProblem('expected a JSON list of rate objects or {"rates": [...]}')]
        )
    if not items:
        return
    columns: list[str] = []
    for item in items:
        if isinstance(item, dict):
            columns.extend(c for c in item if c not in columns)
    _check_columns(name, columns, what="keys of each object")
    for number, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            yield number, None, {"__extra__": "not a JSON object"}
            continue
        cells: dict[str, str] = {}
        for key, value in item.items():
            if isinstance(value, dict | list | bool):
                cells["__extra__"] = f"{key} must be a string or a number"
            cells[key] = "" if value is None else str(value)
        yield number, None, cells


def _decode(name: str, data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise RateSheetError(
            name, [RowProblem(f"not UTF-8 text (byte {exc.start}); save the sheet as UTF-8 CSV")]
        ) from exc


def _is_json(name: str, text: str) -> bool:
    suffix = PurePath(name).suffix.lower()
    if suffix in {".json", ".csv"}:
        return suffix == ".json"
    return text.lstrip()[:1] in {"[", "{"}


def parse_rate_sheet(name: str, data: bytes) -> list[NewRateRow]:
    """Parse and validate a rate sheet; JSON when `name` ends in .json (or the content
    starts with `[`/`{`), CSV otherwise.

    Raises `RateSheetError` listing up to 20 problems (row number, CSV line, column,
    reason) when any row is invalid, the header is wrong or there are no rows.
    """
    text = _decode(name, data)
    raw = _json_rows(name, text) if _is_json(name, text) else _csv_rows(name, text)
    rows: list[NewRateRow] = []
    problems: list[RowProblem] = []
    count = 0
    seen: dict[tuple[str, str | None, str | None, dt.date], int] = {}
    for number, line, cells in raw:
        if number > MAX_ROWS:
            raise RateSheetError(name, [RowProblem(f"more than {MAX_ROWS} rows; split the sheet")])
        if "__extra__" in cells:
            count += 1
            if len(problems) < MAX_REPORTED_ERRORS:
                problems.append(RowProblem(cells["__extra__"], number, line))
            continue
        row, row_problems = _row(cells)
        if row is not None:
            first = seen.setdefault(row.key, number)
            if first != number:
                row_problems = [
                    (None, f"duplicate of row {first}: same product, term, tier and effective_from")
                ]
            rows.append(row)
        for column, message in row_problems:
            count += 1
            if len(problems) < MAX_REPORTED_ERRORS:
                problems.append(RowProblem(message, number, line, column))
    if problems:
        raise RateSheetError(name, problems, error_count=count)
    if not rows:
        raise RateSheetError(name, [RowProblem("the sheet has no rate rows")])
    return rows


def load_rate_sheet(
    session: Session, *, filename: str, data: bytes, actor: Actor | None = None
) -> RateSheetResult:
    """Parse `data` and store it as one sheet in the caller's transaction; with an
    `actor`, the sheet's `loaded_by` and a `rates.load` audit event (unchanged loads
    too) in the same transaction.

    Raises `RateSheetError` (nothing written) for an invalid sheet.
    """
    rows = parse_rate_sheet(filename, data)
    result = insert_sheet(
        session,
        filename=PurePath(filename).name[:255] or "upload",
        content_hash=hashlib.sha256(data).hexdigest(),
        rows=rows,
        loaded_by=actor.id if actor else None,
    )
    if actor is not None:
        details = {
            "filename": result.filename,
            "rows": result.rows,
            "superseded": result.superseded,
            "unchanged": result.unchanged,
        }
        audit.record(session, actor, "rates.load", target=result.sheet_id, details=details)
    return result
