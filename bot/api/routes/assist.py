"""Agent-assist routes (`/v1/assist`): suggestions for the caller's last turn, and the
agent's recent calls, each of which can be reopened.

Each route calls one function of `bot.assist`, which describes what is stored and how
retries are answered; the bodies are in `bot.api.schemas`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from bot.api.auth import require_scope
from bot.api.deps import RuntimeDep
from bot.api.errors import body_limited, error_responses
from bot.api.schemas import (
    TRANSCRIPT_BODY_LIMIT,
    AssistConversationOut,
    AssistIn,
    AssistListOut,
    AssistOut,
)
from bot.assist import ALTERNATES, recent_calls, reopen_call, suggest

router = APIRouter(
    prefix="/v1/assist",
    tags=["assist"],
    dependencies=[Depends(require_scope("agent"))],
    **body_limited(TRANSCRIPT_BODY_LIMIT, 401, 403),
)


@router.post("", response_model=AssistOut, responses={422: {}})
def assist(body: AssistIn, runtime: RuntimeDep) -> AssistOut:
    """Suggested answers, passages and current rates for the last customer turn."""
    return suggest(runtime, body.conversation_id, body.transcript)


@router.get("", response_model=AssistListOut)
def list_calls(
    runtime: RuntimeDep, limit: Annotated[int, Query(ge=1, le=100)] = 20
) -> AssistListOut:
    """The most recent agent conversations, newest first."""
    return recent_calls(runtime, limit)


@router.get(
    "/{conversation_id}", response_model=AssistConversationOut, responses=error_responses(404)
)
def reopen(conversation_id: str, runtime: RuntimeDep) -> AssistConversationOut:
    """A call with its transcript, and per customer turn its suggestions and feedback."""
    return reopen_call(runtime, conversation_id)


__all__ = ["ALTERNATES", "AssistIn", "AssistOut", "router", "suggest"]
