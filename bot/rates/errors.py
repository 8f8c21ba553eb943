"""Errors of the rate domain. Messages say which row is wrong and how to fix it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

# Most row problems kept on a `RateSheetError`; the count of all of them is kept too.
MAX_REPORTED_ERRORS = 20


class RateError(Exception):
    """Base class for rate errors."""


@dataclass(frozen=True, slots=True)
class RowProblem:
    """One problem found in a rate sheet.

    `row` is the 1-based data row (None for problems with the whole file, such as a
    missing column); `line` the file line where the row ends (CSV only); `column` the
    column at fault, when there is one.
    """

    message: str
    row: int | None = None
    line: int | None = None
    column: str | None = None

    def __str__(self) -> str:
        if self.row is None:
            return self.message
        where = f"row {self.row}" + (f" (line {self.line})" if self.line is not None else "")
        return f"{where}: {self.message}"

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form: {row, line, column, message}."""
        return {"row": self.row, "line": self.line, "column": self.column, "message": self.message}


class RateSheetError(RateError):
    """A rate sheet was rejected as a whole; nothing of it was stored.

    `errors` holds up to `MAX_REPORTED_ERRORS` problems, in file order; `error_count`
    counts all of them. The HTTP API answers 422 (`STATUS`).
    """

    STATUS = 422

    def __init__(self, filename: str, problems: Sequence[RowProblem], *, error_count: int = 0):
        self.filename = filename
        self.errors = list(problems[:MAX_REPORTED_ERRORS])
        self.error_count = max(error_count, len(problems))
        first = str(self.errors[0]) if self.errors else "the sheet is invalid"
        more = self.error_count - 1
        extra = f" (and {more} more problem{'s' if more != 1 else ''})" if more > 0 else ""
        super().__init__(f"{filename}: {first}{extra}; nothing was loaded")


__all__ = ["MAX_REPORTED_ERRORS", "RateError", "RateSheetError", "RowProblem"]
