"""The feedback reranker's state, and training its adapter while the server runs.

`teller rerank train` needs the embedded index, which a running server holds; this
route does the same work inside the server (admin token), so operators never stop it.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool

from bot.api.auth import AdminDep
from bot.api.deps import RuntimeDep
from bot.api.errors import body_limited, error_responses
from bot.api.schemas import JSON_BODY_LIMIT
from db.reranker_versions import reranker_version_headers

router = APIRouter(prefix="/v1/reranker", tags=["feedback"], **body_limited(JSON_BODY_LIMIT))


@router.get("")
def reranker_state(runtime: RuntimeDep) -> dict[str, Any]:
    """What orders search results now: version, settings and the stored adapters."""
    reranker = runtime.reranker
    config = asdict(reranker.config)
    with runtime.sessions() as session:
        versions = [
            {"id": version_id, "metrics": metrics}
            for version_id, _, metrics in reranker_version_headers(
                session, embedding_model=runtime.embedder.name
            )
        ]
    return {
        "enabled": reranker.config.enabled,
        "version": runtime.index.reranker_version,
        "adapter": reranker.adapter.version if reranker.adapter is not None else None,
        "embedding_model": runtime.embedder.name,
        "config": config,
        "adapters": versions,
    }


@router.post("/train", responses=error_responses(401, 403))
async def train(runtime: RuntimeDep, actor: AdminDep) -> dict[str, Any]:
    """Fit a new adapter on the live votes, validate and store it (served by "latest"
    when accepted); returns the training report."""
    report: dict[str, Any] = await run_in_threadpool(
        runtime.reranker.train, runtime.index.inner.search, actor=actor
    )
    return report
