"""FastAPI dependency aliases, in one place (routes stay thin)."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, Header, Request

from bot.api.errors import UnauthorizedError
from bot.knowledge import KnowledgeService
from bot.runtime import Runtime
from bot.settings import Settings


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_knowledge(runtime: Annotated[Runtime, Depends(get_runtime)]) -> KnowledgeService:
    return runtime.knowledge


def require_admin(
    settings: Annotated[Settings, Depends(get_settings)],
    authorization: Annotated[str | None, Header()] = None,
) -> None:
    """Write endpoints need `Authorization: Bearer <TELLER_ADMIN_TOKEN>` when one is set."""
    if settings.admin_token is None:
        return
    expected = settings.admin_token.get_secret_value()
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not secrets.compare_digest(token.encode(), expected.encode()):
        raise UnauthorizedError("send the admin token as `Authorization: Bearer <token>`")


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
KnowledgeDep = Annotated[KnowledgeService, Depends(get_knowledge)]
AdminDep = Annotated[None, Depends(require_admin)]
