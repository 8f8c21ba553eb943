"""Errors raised by the retrieval package. Messages say what the user can do."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class RetrievalError(Exception):
    """Base class for retrieval errors."""


class UnsupportedFormatError(RetrievalError):
    """The file type cannot be ingested."""


class EmptyDocumentError(RetrievalError):
    """The input holds no text to index."""


class DocumentParseError(RetrievalError):
    """The input could not be parsed (broken PDF, invalid JSON, bad CSV...)."""


class DocumentTooLargeError(RetrievalError):
    """The input exceeds the configured upload limit."""


class DocumentNotFoundError(RetrievalError):
    """No live document has the given id."""


class IndexUnavailableError(RetrievalError):
    """The index cannot be reached or opened (locked, unreachable cluster, bad mapping)."""


class IndexInUseError(IndexUnavailableError):
    """Another process (a running server) holds the embedded index's directory lock."""


class IncompatibleIndexError(IndexUnavailableError):
    """The index on disk was built differently (format, dimension); `teller reindex` fixes it."""


class ModelLoadError(RetrievalError):
    """The embedding model could not be loaded from the configured path."""


@dataclass(frozen=True, slots=True)
class BulkFailure:
    """One document that a bulk request rejected."""

    key: int | None
    operation: str
    status: int
    error: str


class BulkIndexingError(IndexUnavailableError):
    """Some documents of a bulk request were rejected; the others were written.

    `failures` lists each rejected chunk key with the cluster's reason. An
    `IndexUnavailableError` because the index no longer matches the database until
    the chunks are written again (the API answers 503 with the message).
    """

    def __init__(self, message: str, failures: Sequence[BulkFailure]):
        super().__init__(message)
        self.failures = list(failures)
