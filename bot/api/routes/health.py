"""Liveness and readiness probes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from retrieval.types import IndexBackend

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """Liveness: the process is up."""
    return {"status": "ok"}


@router.get("/readyz")
def readyz(request: Request) -> JSONResponse:
    """Readiness: database reachable, model loaded, index open and healthy."""
    checks: dict[str, Any] = {}
    runtime = getattr(request.app.state, "runtime", None)
    if runtime is None:
        return JSONResponse({"status": "starting", "checks": {}}, status_code=503)
    try:
        with runtime.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"unavailable: {type(exc).__name__}"
    checks["index"] = index_check(runtime.index)
    ok = checks["database"] == "ok" and checks["index"].get("status") == "ok"
    return JSONResponse(
        {"status": "ready" if ok else "unavailable", "checks": checks},
        status_code=200 if ok else 503,
    )


def index_check(index: IndexBackend) -> dict[str, Any]:
    """The index's readiness: ``{"status": "ok", "chunks": N}``, or a status of
    ``"unavailable: <why>"``. A backend with a `health()` report (Elasticsearch) is
    ready only when the report says `ok`; the report is included as `health`."""
    health = getattr(index, "health", None)
    try:
        if not callable(health):
            return {"status": "ok", "chunks": index.count()}
        report = dict(health())
    except Exception as exc:
        return {"status": f"unavailable: {exc}"}
    status = "ok" if report.get("ok") else f"unavailable: {report.get('error', 'unhealthy')}"
    return {"status": status, "chunks": report.get("count"), "health": report}
