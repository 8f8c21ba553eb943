"""Maps domain errors to HTTP responses in one place.

Every error body is `{"error": {"type", "message"}}` with a message a person can act
on (an invalid body's 422 keeps FastAPI's `{"detail": [...]}`, whose `loc` names the
field); unexpected exceptions become a 500 without a stack trace in the body.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

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


class ErrorDetail(BaseModel):
    type: str
    message: str


class ErrorOut(BaseModel):
    """Every error but an invalid body's 422."""

    error: ErrorDetail


ERROR_DESCRIPTIONS = {
    400: "A control character (such as %00) in the URL, or a body that is not UTF-8",
    401: "No API key, or one that is not valid",
    403: "The API key lacks the scope this endpoint needs",
    404: "Not found",
    409: "Conflict",
    413: "The request body is larger than this endpoint accepts",
    415: "A content type this endpoint does not read",
}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for errors in Teller's shape."""
    described = {code: ERROR_DESCRIPTIONS.get(code, HTTPStatus(code).phrase) for code in codes}
    return {code: {"model": ErrorOut, "description": text} for code, text in described.items()}


def body_limited(limit: int, *statuses: int) -> dict[str, Any]:
    """`APIRouter` arguments for a router whose request bodies stop at `limit` bytes: the
    limit and its documented 413, with the other error `statuses` its routes send."""
    return {"max_body_size": limit, "responses": error_responses(*statuses, 413)}


TOO_LARGE = "the request body is larger than this endpoint accepts; send less"


def _type_name(status: int) -> str:
    """`NotFound`, `MethodNotAllowed`, `RequestEntityTooLarge`: the status phrase."""
    return HTTPStatus(status).phrase.title().replace(" ", "").replace("-", "")


def _http_message(request: Request, exc: HTTPException, allowed: str) -> str:
    """Starlette's and FastAPI's own errors ("Not Found") say what to do instead."""
    if exc.status_code == 404 and exc.detail == "Not Found":
        return f"no endpoint at {request.url.path}; the API is listed at /docs"
    if exc.status_code == 405:
        return f"{request.method} is not allowed here; use {allowed or 'another method'}"
    if exc.status_code == 413:
        return TOO_LARGE
    if exc.status_code == 400 and exc.detail == "There was an error parsing the body":
        return "the request body could not be read: send JSON encoded as UTF-8"
    return str(exc.detail)


METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _allowed_methods(request: Request) -> str:
    """Every method some route serves at this path: Starlette's 405 names only the first
    matching route's methods (`Allow: POST` where GET serves the same path too)."""
    routes = request.app.router.routes
    allowed = [
        method
        for method in METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] == Match.FULL for route in routes
        )
    ]
    return ", ".join(allowed)


def install_error_handlers(app: FastAPI) -> None:
    async def handle(request: Request, exc: Exception) -> JSONResponse:
        status = status_for(exc)
        if status >= 500:
            log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return JSONResponse(error_body(exc, status), status_code=status, headers=headers)

    async def handle_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = _allowed_methods(request) or headers.get("Allow", "")
        message = _http_message(request, exc, headers.get("Allow", ""))
        error = {"type": _type_name(exc.status_code), "message": message}
        return JSONResponse({"error": error}, status_code=exc.status_code, headers=headers or None)

    handled: list[type[Exception]] = [ApiError, *STATUS_BY_ERROR]
    for exc_type in handled:
        app.add_exception_handler(exc_type, handle)
    app.add_exception_handler(HTTPException, handle_http)
    app.add_exception_handler(Exception, handle)


class PlainTextErrors:
    """Rewrites a plain-text 4xx into Teller's shape: Starlette's body limit answers
    "Content Too Large" itself, inside the route, where no exception handler sees it.
    Pure ASGI; every other response, streams included, passes untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status: int | None = None
        text = b""

        async def send_json(message: Message) -> None:
            nonlocal status, text
            if message["type"] == "http.response.start" and 400 <= message["status"] < 500:
                content_type = dict(message.get("headers", [])).get(b"content-type", b"")
                if content_type.startswith(b"text/plain"):
                    status = message["status"]
                    return
            elif status is not None and message["type"] == "http.response.body":
                text += message.get("body", b"")
                if message.get("more_body"):
                    return
                said = TOO_LARGE if status == 413 else text.decode("utf-8", "replace")
                body = {"error": {"type": _type_name(status), "message": said}}
                await JSONResponse(body, status_code=status)(scope, receive, send)
                return
            await send(message)

        await self.app(scope, receive, send_json)
