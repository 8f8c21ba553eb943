"""The FastAPI application: created by `create_app(settings)`, warmed up in the lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool

from bot.api.errors import install_error_handlers
from bot.api.routes import (
    assist,
    chat,
    documents,
    feedback,
    health,
    internal,
    rates,
    search,
    web,
)
from bot.runtime import Runtime, build_runtime
from bot.settings import Settings


def create_app(settings: Settings, *, runtime: Runtime | None = None) -> FastAPI:
    """Build the API. Pass a `runtime` to share one already opened (tests, CLI)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = runtime is None
        app.state.runtime = runtime or await run_in_threadpool(build_runtime, settings)
        try:
            yield
        finally:
            if owned:
                app.state.runtime.close()
            app.state.runtime = None

    app = FastAPI(
        title="Teller API",
        version="0.1.0",
        description="Grounded answers for banks: knowledge base, hybrid search, feedback.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.runtime = None
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(documents.router)
    app.include_router(search.router)
    app.include_router(chat.router)
    app.include_router(rates.router)
    app.include_router(internal.router)
    app.include_router(feedback.router)
    app.include_router(assist.router)
    app.include_router(web.router)
    web.install_cors(app, settings.widget_origins)
    return app
