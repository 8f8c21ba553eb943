"""Errors raised by the generation package. Messages say what the operator can do."""

from __future__ import annotations


class GenerationError(Exception):
    """Base class for generation errors: the answer could not be composed."""


class GeneratorUnavailableError(GenerationError):
    """The configured generator cannot be used: a missing or unloadable model directory,
    a tokenizer without a chat template, or an endpoint that is unreachable, times out
    or rejects the request. The caller answers extractively or abstains."""
