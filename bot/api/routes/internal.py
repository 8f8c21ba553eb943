"""Internal endpoints for Teller's Rasa action server (not for browsers or customers).

Every call needs `X-Teller-Actions-Token: <TELLER_ACTIONS_TOKEN>`; without a configured
token the endpoints refuse everything.
"""

from __future__ import annotations

import secrets
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Header
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from bot.api.deps import RuntimeDep, SettingsDep
from bot.api.errors import UnauthorizedError, body_limited
from bot.api.schemas import JSON_BODY_LIMIT, ChatOut, Identifier, Text
from bot.dialogue import record_handoff, term_choices

TOKEN_HEADER = "X-Teller-Actions-Token"
ConversationId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{8,36}$")]
Channel = Literal["web", "agent", "api", "cli"]


def require_actions_token(
    settings: SettingsDep,
    x_teller_actions_token: Annotated[str | None, Header(alias=TOKEN_HEADER)] = None,
) -> None:
    """The caller must send the shared secret of the action server."""
    configured = settings.actions_token
    expected = configured.get_secret_value() if configured is not None else None
    if not expected:
        raise UnauthorizedError("internal endpoints are off: set TELLER_ACTIONS_TOKEN")
    sent = x_teller_actions_token or ""
    if not secrets.compare_digest(sent.encode(), str(expected).encode()):
        raise UnauthorizedError(f"send the actions token in the {TOKEN_HEADER} header")


router = APIRouter(
    prefix="/v1/internal",
    tags=["internal"],
    dependencies=[Depends(require_actions_token)],
    **body_limited(JSON_BODY_LIMIT, 401),
)


class InternalAnswerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message: Text = Field(min_length=1, max_length=4000)
    conversation_id: ConversationId
    channel: Channel = "api"


class HandoffIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    conversation_id: ConversationId
    channel: Channel = "api"
    message: Text = Field(min_length=1, max_length=4000)
    reason: Identifier = Field(min_length=1, max_length=200)
    text: Text = Field(
        min_length=1,
        max_length=2000,
        description='What the customer sees; "{reference}" is filled in.',
    )


class TermChoicesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message: Text = Field(min_length=1, max_length=4000)
    conversation_id: ConversationId | None = None


class TermChoicesOut(BaseModel):
    choices: list[str]


@router.post("/answer", response_model=ChatOut)
async def internal_answer(body: InternalAnswerIn, runtime: RuntimeDep) -> ChatOut:
    """Answer through the pipeline (stored); called by Rasa's `action_answer`."""
    result = await run_in_threadpool(
        runtime.answers.answer,
        body.message,
        conversation_id=body.conversation_id,
        channel=body.channel,
    )
    return ChatOut.model_validate(result.as_dict())


@router.post("/handoff", response_model=ChatOut)
async def internal_handoff(body: HandoffIn, runtime: RuntimeDep) -> ChatOut:
    """Record a handoff to a person and return it with its reference."""
    result = await run_in_threadpool(
        record_handoff,
        runtime.sessions,
        conversation_id=body.conversation_id,
        channel=body.channel,
        message=body.message,
        reason=body.reason,
        text=body.text,
    )
    return ChatOut.model_validate(result.as_dict())


@router.post("/term-choices", response_model=TermChoicesOut)
async def internal_term_choices(body: TermChoicesIn, runtime: RuntimeDep) -> TermChoicesOut:
    """The terms to offer for a rate question; empty when no term needs choosing."""
    choices = await run_in_threadpool(
        term_choices, runtime.sessions, body.message, conversation_id=body.conversation_id
    )
    return TermChoicesOut(choices=choices)
