"""FastAPI dependency aliases, in one place (routes stay thin)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

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


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
KnowledgeDep = Annotated[KnowledgeService, Depends(get_knowledge)]
