"""Maps domain errors to HTTP responses in one place.

Every error body is `{"error": {"type", "message"}}` with a message a person can act
on; unexpected exceptions become a 500 without a stack trace in the body.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from bot.answers.pipeline import ConversationIdError, EmptyMessageError
from bot.generation.errors import GeneratorUnavailableError
from bot.rates.errors import RateSheetError
from db.errors import DatabaseUnavailableError
from retrieval.errors import (
    DocumentNotFoundError,
    DocumentParseError,
    DocumentTooLargeError,
    EmptyDocumentError,
    IndexUnavailableError,
    ModelLoadError,
    UnsupportedFormatError,
)

log = logging.getLogger(__name__)


class ApiError(Exception):
    status_code = 400


class UnauthorizedError(ApiError):
    status_code = 401


class BadRequestError(ApiError):
    status_code = 400


STATUS_BY_ERROR: dict[type[Exception], int] = {
    DocumentNotFoundError: 404,
    UnsupportedFormatError: 415,
    DocumentTooLargeError: 413,
    EmptyDocumentError: 422,
    DocumentParseError: 422,
    IndexUnavailableError: 503,
    ModelLoadError: 503,
    DatabaseUnavailableError: 503,
    GeneratorUnavailableError: 503,
    RateSheetError: 422,
    ConversationIdError: 422,
    EmptyMessageError: 422,
}


def status_for(exc: Exception) -> int:
    if isinstance(exc, ApiError):
        return exc.status_code
    for cls in type(exc).__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]
    return 500


def error_body(exc: Exception, status: int) -> dict[str, dict[str, str]]:
    message = str(exc) if status < 500 or status == 503 else "internal error; see the server log"
    return {"error": {"type": type(exc).__name__, "message": message}}


def install_error_handlers(app: FastAPI) -> None:
    async def handle(request: Request, exc: Exception) -> JSONResponse:
        status = status_for(exc)
        if status >= 500:
            log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return JSONResponse(error_body(exc, status), status_code=status, headers=headers)

    handled: list[type[Exception]] = [ApiError, *STATUS_BY_ERROR]
    for exc_type in handled:
        app.add_exception_handler(exc_type, handle)
    app.add_exception_handler(Exception, handle)
