"""Chat: grounded answers with citations, as JSON or as a server-sent event stream."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Header
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from bot.api.deps import RuntimeDep
from bot.api.errors import body_limited, error_body, error_responses, status_for
from bot.api.schemas import JSON_BODY_LIMIT, AnswerOut, ChatIn, ChatOut
from bot.dialogue import DialogueService
from db import conversations as convo_repo
from retrieval.errors import DocumentNotFoundError

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1", tags=["chat"], **body_limited(JSON_BODY_LIMIT))


def _sse(event: str, data: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def _event_stream(pipeline: DialogueService, body: ChatIn) -> Iterator[str]:
    try:
        for event in pipeline.stream(
            body.message, conversation_id=body.conversation_id, channel=body.channel
        ):
            yield _sse(event.event, event.data)
    except Exception as exc:  # the stream has started: report in-band, never a stack trace
        status = status_for(exc)
        if status >= 500:
            log.exception("chat stream failed")
        yield _sse("error", {**error_body(exc, status)["error"], "status": status})


@router.post(
    "/chat",
    response_model=ChatOut,
    responses={200: {"content": {"text/event-stream": {}}}, 422: {}},
)
async def chat(
    body: ChatIn, runtime: RuntimeDep, accept: Annotated[str | None, Header()] = None
) -> Any:
    """Answer a message (through Rasa when it runs); SSE with `Accept: text/event-stream`."""
    pipeline = runtime.dialogue
    if accept and "text/event-stream" in accept:
        return StreamingResponse(
            _event_stream(pipeline, body),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    result = await run_in_threadpool(
        pipeline.answer, body.message, conversation_id=body.conversation_id, channel=body.channel
    )
    return ChatOut.model_validate(result.as_dict())


@router.get("/answers/{answer_id}", response_model=AnswerOut, responses=error_responses(404))
def get_answer(answer_id: str, runtime: RuntimeDep) -> AnswerOut:
    """A stored answer with its full trace (question, retrieval, sources, generator, timings)."""
    with runtime.sessions() as session:
        answer = convo_repo.get_answer(session, answer_id=answer_id)
        if answer is None:
            raise DocumentNotFoundError(f"no answer with id {answer_id!r}")
        return AnswerOut.model_validate(answer, from_attributes=True)
