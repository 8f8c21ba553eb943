"""Refuses URLs that hold control characters, before any route reads them."""

from __future__ import annotations

from urllib.parse import unquote_plus

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from bot.api.errors import BadRequestError, error_body
from retrieval.parsing import has_control_characters


class ControlCharacterGuard:
    """A 400 for a path or query string holding a control character (``%00`` above all).

    Path ids and query filters go to SQL, and PostgreSQL refuses NUL in text outright;
    checked once here instead of in every route. Pure ASGI, so streams pass untouched.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            query = unquote_plus(scope.get("query_string", b"").decode("latin-1"))
            where = (
                "path"
                if has_control_characters(scope.get("path", ""))
                else "query string"
                if has_control_characters(query)
                else None
            )
            if where is not None:
                error = BadRequestError(
                    f"the URL's {where} holds a control character (such as %00); remove it"
                )
                await JSONResponse(error_body(error, 400), status_code=400)(scope, receive, send)
                return
        await self.app(scope, receive, send)
