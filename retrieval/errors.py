"""Errors raised by the retrieval package. Messages say what the user can do."""

from __future__ import annotations


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


class ModelLoadError(RetrievalError):
    """The embedding model could not be loaded from the configured path."""
