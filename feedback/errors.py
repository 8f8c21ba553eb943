"""Errors raised by the feedback package."""

from __future__ import annotations


class FeedbackError(Exception):
    """Base class for feedback errors."""


class ExportError(FeedbackError):
    """An export could not be written (bad filters, unwritable path...)."""


class FinetuneError(FeedbackError):
    """Fine-tuning could not run or produced an unusable model."""
