"""Feedback: votes on answers, their history, the review screen, dataset export."""

from __future__ import annotations

import datetime as dt
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field

from bot.api.auth import Principal, authenticate, key_actor, presented_key, require_scope
from bot.api.deps import RuntimeDep, SettingsDep
from bot.api.errors import ApiError, body_limited, error_responses
from bot.api.schemas import (
    JSON_BODY_LIMIT,
    MAX_OFFSET,
    Identifier,
    IsoDateTime,
    Printable,
    Text,
)
from bot.runtime import Runtime
from db import audit
from db.feedback import AnswerNotFound, FeedbackFilters, IdempotencyKeyReused
from feedback.capture import (
    MAX_COMMENT_LENGTH,
    MAX_CORRECTION_LENGTH,
    MAX_REASON_LENGTH,
    MAX_REASONS,
    FeedbackService,
    Vote,
    VoteView,
    search_matcher,
)
from feedback.datasets import export_audit_details
from feedback.errors import ExportError
from feedback.rerank import RerankedIndex
from feedback.types import ExportFilters

router = APIRouter(prefix="/v1", tags=["feedback"], **body_limited(JSON_BODY_LIMIT))

Rating = Literal["up", "down"]
RaterKind = Literal["customer", "agent"]
AgentDep = Annotated[Principal, Depends(require_scope("agent"))]
ExportDep = Annotated[Principal, Depends(require_scope("export"))]


class FeedbackNotFoundError(ApiError):
    status_code = 404


class FeedbackConflictError(ApiError):
    status_code = 409


class FeedbackInvalidError(ApiError):
    status_code = 422


@contextmanager
def _domain_errors() -> Iterator[None]:
    """Feedback errors as HTTP errors (until `bot.api.errors` maps them itself)."""
    try:
        yield
    except AnswerNotFound as exc:
        raise FeedbackNotFoundError(str(exc)) from exc
    except IdempotencyKeyReused as exc:
        raise FeedbackConflictError(str(exc)) from exc
    except (ExportError, ValueError) as exc:
        raise FeedbackInvalidError(str(exc)) from exc


def feedback_service(request: Request, runtime: RuntimeDep) -> FeedbackService:
    """The runtime's `FeedbackService` (`runtime.feedback`), or one built for it once."""
    own = getattr(runtime, "feedback", None)
    if isinstance(own, FeedbackService):
        return own
    cached = getattr(request.app.state, "feedback_service", None)
    if cached is None or cached[0] is not runtime:
        cached = (runtime, build_feedback_service(runtime))
        request.app.state.feedback_service = cached
    service: FeedbackService = cached[1]
    return service


def build_feedback_service(runtime: Runtime) -> FeedbackService:
    """Votes embedded with the runtime's model, corrections matched by its knowledge
    base, and the reranker (when the index is a `RerankedIndex`) refreshed on change."""
    index = runtime.knowledge.index
    listeners = [index.reranker.refresh] if isinstance(index, RerankedIndex) else []
    return FeedbackService(
        runtime.sessions,
        embedder=runtime.embedder,
        matcher=search_matcher(runtime.knowledge.search),
        listeners=listeners,
    )


FeedbackDep = Annotated[FeedbackService, Depends(feedback_service)]


class RaterIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: RaterKind
    id: Identifier = Field(
        min_length=1, max_length=200, pattern=r"\S", description="Widget session or agent id."
    )


Reason = Annotated[Text, Field(min_length=1, max_length=MAX_REASON_LENGTH)]


class VoteIn(BaseModel):
    """The rules of `feedback.capture.validate_vote`, stated here so the OpenAPI schema
    tells clients what is accepted."""

    model_config = ConfigDict(extra="forbid")

    rating: Rating
    reasons: list[Reason] = Field(default_factory=list, max_length=MAX_REASONS)
    comment: Printable | None = Field(default=None, max_length=MAX_COMMENT_LENGTH)
    correction: Printable | None = Field(
        default=None,
        max_length=MAX_CORRECTION_LENGTH,
        description="The answer an agent would have given.",
    )
    rater: RaterIn


class RaterOut(BaseModel):
    kind: str
    id: str


class VoteOut(BaseModel):
    id: str
    answer_id: str
    rating: str | None
    reasons: list[str]
    comment: str | None
    correction: str | None
    rater: RaterOut
    channel: str | None = None
    product: str | None = None
    question: str | None = None
    status: str | None = Field(
        default=None, description="created, replaced, unchanged or replayed (a retry)."
    )
    action: str | None = Field(default=None, description="History: created/replaced/withdrawn.")
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None


class AnswerFeedbackOut(BaseModel):
    answer_id: str
    votes: list[VoteOut]
    history: list[VoteOut]


class WithdrawOut(BaseModel):
    withdrawn: bool


class FeedbackListOut(BaseModel):
    items: list[VoteOut]
    total: int
    limit: int
    offset: int


def _out(view: VoteView) -> VoteOut:
    return VoteOut(
        id=view.id,
        answer_id=view.answer_id,
        rating=view.rating,
        reasons=list(view.reasons),
        comment=view.comment,
        correction=view.correction,
        rater=RaterOut(kind=view.rater_kind, id=view.rater_id),
        channel=view.channel,
        product=view.product,
        question=view.question,
        status=view.status,
        action=view.action,
        created_at=view.created_at,
        updated_at=view.updated_at,
    )


def _aware(moment: dt.datetime | None) -> dt.datetime | None:
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=dt.UTC)


class Filters:
    """Query parameters shared by the list, stats and export endpoints."""

    def __init__(
        self,
        since: Annotated[IsoDateTime | None, Query(description="Votes at or after.")] = None,
        until: Annotated[IsoDateTime | None, Query(description="Votes before.")] = None,
        rating: Rating | None = None,
        channel: Literal["web", "agent", "api", "cli"] | None = None,
        product: Annotated[str | None, Query(max_length=200)] = None,
        reason: Annotated[str | None, Query(max_length=64)] = None,
        rater_kind: RaterKind | None = None,
    ):
        self.since, self.until = _aware(since), _aware(until)
        self.rating, self.channel, self.product = rating, channel, product
        self.reason, self.rater_kind = reason, rater_kind

    def to_db(self) -> FeedbackFilters:
        return FeedbackFilters(
            since=self.since,
            until=self.until,
            rating=self.rating,
            channel=self.channel,
            product=self.product,
            reason=self.reason,
            rater_kind=self.rater_kind,
        )


FiltersDep = Annotated[Filters, Depends()]


@router.post(
    "/answers/{answer_id}/feedback",
    response_model=VoteOut,
    status_code=201,
    responses={200: {"model": VoteOut}, 422: {}, **error_responses(401, 403, 404, 409)},
)
async def vote(
    answer_id: str,
    body: VoteIn,
    response: Response,
    runtime: RuntimeDep,
    service: FeedbackDep,
    authorization: Annotated[str | None, Header()] = None,
    x_api_key: Annotated[str | None, Header()] = None,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> VoteOut:
    """Vote on an answer (one vote per rater; voting again replaces it). Agents need a key."""
    if body.rater.kind == "agent":
        authenticate(runtime, presented_key(authorization, x_api_key), "agent")
    domain = Vote(
        rating=body.rating,
        rater_kind=body.rater.kind,
        rater_id=body.rater.id,
        reasons=tuple(body.reasons),
        comment=body.comment,
        correction=body.correction,
    )
    with _domain_errors():
        view = await run_in_threadpool(
            service.vote, answer_id, domain, idempotency_key=idempotency_key
        )
    if view.status != "created":
        response.status_code = 200
    return _out(view)


@router.delete(
    "/answers/{answer_id}/feedback",
    response_model=WithdrawOut,
    responses=error_responses(401, 403, 404),
)
async def withdraw(
    answer_id: str,
    runtime: RuntimeDep,
    service: FeedbackDep,
    rater_kind: RaterKind,
    rater_id: Annotated[str, Query(min_length=1, max_length=200)],
    authorization: Annotated[str | None, Header()] = None,
    x_api_key: Annotated[str | None, Header()] = None,
) -> WithdrawOut:
    """Withdraw a rater's vote (it stays in the history); idempotent."""
    if rater_kind == "agent":
        authenticate(runtime, presented_key(authorization, x_api_key), "agent")
    with _domain_errors():
        removed = await run_in_threadpool(
            service.withdraw, answer_id, rater_kind=rater_kind, rater_id=rater_id
        )
    return WithdrawOut(withdrawn=removed)


@router.get(
    "/answers/{answer_id}/feedback",
    response_model=AnswerFeedbackOut,
    responses=error_responses(401, 403, 404),
)
def answer_feedback(answer_id: str, service: FeedbackDep, _: AgentDep) -> AnswerFeedbackOut:
    """The live votes on an answer and their full history (needs scope `agent`)."""
    with _domain_errors():
        live, history = service.history(answer_id)
    return AnswerFeedbackOut(
        answer_id=answer_id, votes=[_out(v) for v in live], history=[_out(e) for e in history]
    )


@router.get("/feedback", response_model=FeedbackListOut, responses=error_responses(401, 403))
def list_feedback(
    service: FeedbackDep,
    filters: FiltersDep,
    _: AgentDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> FeedbackListOut:
    """Live votes, newest first, filtered for the review screen (needs scope `agent`)."""
    with _domain_errors():
        items, total = service.list_votes(filters.to_db(), limit=limit, offset=offset)
    return FeedbackListOut(items=[_out(v) for v in items], total=total, limit=limit, offset=offset)


@router.get("/feedback/stats", responses=error_responses(401, 403))
def feedback_stats(service: FeedbackDep, filters: FiltersDep, _: AgentDep) -> dict[str, Any]:
    """Vote counts: approval rate, per rater kind, channel, product, reason (scope `agent`)."""
    with _domain_errors():
        return service.stats(filters.to_db())


@router.get(
    "/feedback/export",
    response_class=FileResponse,
    responses={
        200: {"content": {"application/x-ndjson": {}, "application/json": {}}},
        422: {},
        **error_responses(401, 403),
    },
)
async def export_feedback(
    request: Request,
    runtime: RuntimeDep,
    service: FeedbackDep,
    settings: SettingsDep,
    filters: FiltersDep,
    principal: ExportDep,
    format: Literal["sft", "kto", "preference", "retrieval"],
    split: Literal["train", "validation", "manifest"] = "train",
    min_agreement: Annotated[float | None, Query(gt=0.0, le=1.0)] = None,
    validation_fraction: Annotated[float, Query(ge=0.0, lt=1.0)] = 0.1,
    seed: int = 13,
) -> FileResponse:
    """A JSON Lines dataset (one split) or its manifest; needs scope `export`.

    Every call writes a new export (files and manifest) under the data dir's `exports/`.
    """
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    folder = Path(settings.data_dir) / "exports" / f"{stamp}-{format}-{secrets.token_hex(3)}"
    folder.mkdir(parents=True, exist_ok=True)
    domain = ExportFilters(
        since=filters.since,
        until=filters.until,
        min_agreement=min_agreement,
        rating=filters.rating,
        channel=filters.channel,
        product=filters.product,
        reason=filters.reason,
    )
    try:
        with _domain_errors():
            result = await run_in_threadpool(
                service.export,
                format,
                folder / f"{format}.jsonl",
                domain,
                validation_fraction=validation_fraction,
                seed=seed,
            )
        await run_in_threadpool(
            audit.record_committed,
            runtime.sessions,
            key_actor(principal, request),
            "feedback.export",
            target=folder.name,
            details=export_audit_details(result, domain),
        )
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)  # keep only exports that were written
        raise
    headers = {"X-Teller-Export": folder.name, "X-Teller-Export-Key": principal.key_id}
    if split == "manifest":
        return FileResponse(result.manifest_path, media_type="application/json", headers=headers)
    headers["X-Teller-Export-Rows"] = str(result.counts.get(split, 0))
    return FileResponse(
        result.files[split],
        media_type="application/x-ndjson",
        filename=f"{format}.{split}.jsonl",
        headers=headers,
    )
