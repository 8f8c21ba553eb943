"""The FastAPI application: created by `create_app(settings)`, warmed up in the lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool

from bot.api.errors import PlainTextErrors, error_responses, install_error_handlers
from bot.api.routes import (
    assist,
    audit,
    chat,
    documents,
    feedback,
    health,
    internal,
    rates,
    reranker,
    search,
    web,
)
from bot.api.url_guard import ControlCharacterGuard
from bot.reindex import active_index_stamp, reembed_stale
from bot.runtime import Runtime, build_runtime
from bot.settings import Settings

log = logging.getLogger(__name__)

SWITCH_GRACE_S = 30.0  # requests that started on the old runtime finish within this


async def follow_model_switches(app: FastAPI, settings: Settings) -> None:
    """Swap in a new runtime when `teller reindex --model` records a switch.

    Polls `active-index.json` every `reload_poll_s`; on a change, builds a runtime on
    the new model and index beside the serving one (which keeps answering), sends new
    requests to it, then after `SWITCH_GRACE_S` re-embeds chunks that the old runtime
    wrote meanwhile and closes the old one. A failed build is logged and the old
    runtime keeps serving until the next switch.
    """
    failed: str | None = None
    while True:
        await asyncio.sleep(settings.reload_poll_s)
        stamp = active_index_stamp(settings)
        current: Runtime = app.state.runtime
        if stamp == current.active_stamp or stamp == failed:
            continue
        try:
            fresh = await run_in_threadpool(build_runtime, settings)
        except Exception:
            log.exception("switching to the new embedding model failed; still serving the old")
            failed = stamp
            continue
        app.state.runtime = fresh
        log.info("switched to embedding model %s", fresh.settings.embedding_model)
        try:
            await asyncio.sleep(SWITCH_GRACE_S)
            await run_in_threadpool(reembed_stale, fresh.knowledge)
            await run_in_threadpool(fresh.knowledge.reconcile)
        finally:  # also on shutdown during the grace period
            await run_in_threadpool(current.close)


def create_app(settings: Settings, *, runtime: Runtime | None = None) -> FastAPI:
    """Build the API. Pass a `runtime` to share one already opened (tests, CLI)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = runtime is None
        app.state.runtime = runtime or await run_in_threadpool(build_runtime, settings)
        follower = asyncio.create_task(follow_model_switches(app, settings)) if owned else None
        try:
            yield
        finally:
            if follower is not None:
                follower.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await follower
            if owned:
                app.state.runtime.close()
            app.state.runtime = None

    app = FastAPI(
        title="Teller API",
        version="0.1.0",
        description="Grounded answers for banks: knowledge base, hybrid search, feedback.",
        lifespan=lifespan,
        responses=error_responses(400),
    )
    app.state.settings = settings
    app.state.runtime = None
    install_error_handlers(app)
    app.add_middleware(PlainTextErrors)
    app.add_middleware(ControlCharacterGuard)
    app.include_router(health.router)
    app.include_router(documents.router)
    app.include_router(search.router)
    app.include_router(chat.router)
    app.include_router(rates.router)
    app.include_router(internal.router)
    app.include_router(feedback.router)
    app.include_router(reranker.router)
    app.include_router(assist.router)
    app.include_router(audit.router)
    app.include_router(web.router)
    web.install_cors(app, settings.widget_origins)
    return app
