"""The audit log: administrative changes and data exports, newest first (admin)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel

from bot.api.auth import AdminDep
from bot.api.deps import RuntimeDep
from bot.api.errors import error_responses
from bot.api.schemas import IsoDateTime
from db import audit

router = APIRouter(prefix="/v1/audit", tags=["audit"])


class AuditEventOut(BaseModel):
    id: int
    at: dt.datetime
    actor: str
    actor_name: str | None
    action: str
    target: str | None
    client: str | None
    details: dict[str, Any]


class AuditOut(BaseModel):
    events: list[AuditEventOut]


@router.get("", response_model=AuditOut, responses=error_responses(401, 403))
async def audit_log(
    runtime: RuntimeDep,
    _: AdminDep,
    since: Annotated[IsoDateTime | None, Query(description="From this moment on.")] = None,
    until: Annotated[IsoDateTime | None, Query(description="Before this moment.")] = None,
    action: audit.AuditAction | None = None,
    actor: Annotated[
        str | None, Query(max_length=200, description='"admin-token", "key:<id>", "cli:<user>"')
    ] = None,
    limit: Annotated[int, Query(ge=1, le=audit.MAX_LIST)] = 100,
) -> AuditOut:
    """Who changed documents, rate sheets, API keys or the reranker, and who exported
    feedback, newest first."""

    def read() -> list[dict[str, Any]]:
        with runtime.sessions() as session:
            events = audit.list_events(
                session, since=since, until=until, action=action, actor=actor, limit=limit
            )
            return [audit.event_dict(event) for event in events]

    events = await run_in_threadpool(read)
    return AuditOut(events=[AuditEventOut.model_validate(event) for event in events])
