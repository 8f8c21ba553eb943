"""Rate sheets: list current (or all) rates, upload a new sheet."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session, sessionmaker
from starlette.datastructures import UploadFile

from bot.api.auth import AdminDep
from bot.api.deps import RuntimeDep, SettingsDep
from bot.api.errors import BadRequestError, error_responses
from bot.api.schemas import IsoDate, RateRowOut, upload_body
from bot.rates.errors import RateSheetError
from bot.rates.loader import load_rate_sheet
from db import rates as repo
from db.audit import Actor
from db.models import RateRow
from db.rates import RateSheetResult
from retrieval.errors import DocumentTooLargeError, UnsupportedFormatError

router = APIRouter(prefix="/v1/rates", tags=["rates"])

_RAW_TYPES = {"text/csv": "upload.csv", "application/json": "upload.json"}
_TEXT = {"type": "string"}
_RATE = {
    "type": "object",
    "required": ["product", "rate_percent", "effective_from", "source"],
    "properties": {
        "product": _TEXT,
        "term": _TEXT,
        "tier": _TEXT,
        "rate_percent": {"type": ["string", "number"]},
        "apr_percent": {"type": ["string", "number", "null"]},
        "apy_percent": {"type": ["string", "number", "null"]},
        "effective_from": {"type": "string", "format": "date"},
        "effective_until": {"type": ["string", "null"], "format": "date"},
        "source": _TEXT,
    },
}
_RATE_LIST = {"type": "array", "items": _RATE}


def get_sessions(runtime: RuntimeDep) -> sessionmaker[Session]:
    """The session factory of the running process (tests override this dependency)."""
    return runtime.sessions


SessionsDep = Annotated[sessionmaker[Session], Depends(get_sessions)]


class RateOut(RateRowOut):
    sheet_id: str
    status: Literal["current", "future", "expired", "superseded", "replaced"]
    superseded_at: dt.datetime | None
    superseded_by_sheet: str | None


class RatesOut(BaseModel):
    on: dt.date
    history: bool
    rates: list[RateOut]


class SheetOut(BaseModel):
    sheet_id: str = Field(
        description="The new sheet; when `unchanged`, the sheet that already holds these rates."
    )
    filename: str
    rows: int
    superseded: int
    unchanged: bool = Field(
        description="Every row was already in force with the same values: nothing stored (200)."
    )


class RateSheetErrorBody(BaseModel):
    type: Literal["RateSheetError"]
    message: str
    errors: list[dict[str, object]]


class RateSheetErrorOut(BaseModel):
    error: RateSheetErrorBody


def _rate_out(row: RateRow, *, on: dt.date, current_ids: set[int]) -> RateOut:
    return RateOut(
        **RateRowOut.model_validate(row, from_attributes=True).model_dump(),
        sheet_id=row.sheet_id,
        status=repo.row_status(row, on=on, current_ids=current_ids),
        superseded_at=row.superseded_at,
        superseded_by_sheet=row.superseded_by_sheet,
    )


@router.get("", response_model=RatesOut)
def list_rates(
    sessions: SessionsDep,
    on: Annotated[IsoDate | None, Query(description="Day to quote for; default today.")] = None,
    product: Annotated[str | None, Query(max_length=200)] = None,
    history: Annotated[bool, Query(description="Every row, with its status.")] = False,
) -> RatesOut:
    """Rates in force today (or `on`), or the full history with each row's status."""
    day = on or dt.date.today()
    with sessions() as session:
        current = repo.current_rates(session, on=day, product=product)
        current_ids = {row.id for row in current}
        rows = repo.rate_history(session, product=product) if history else current
        out = [_rate_out(row, on=day, current_ids=current_ids) for row in rows]
    return RatesOut(on=day, history=history, rates=out)


def _sheet_error(error: RateSheetError) -> JSONResponse:
    body = {
        "error": {
            "type": type(error).__name__,
            "message": str(error),
            "errors": [problem.to_dict() for problem in error.errors],
        }
    }
    return JSONResponse(body, status_code=RateSheetError.STATUS)


def _store(
    sessions: sessionmaker[Session], filename: str, data: bytes, actor: Actor
) -> RateSheetResult:
    with sessions.begin() as session:
        return load_rate_sheet(session, filename=filename, data=data, actor=actor)


async def _read_upload(request: Request, limit: int) -> tuple[str, bytes]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        form = await request.form(max_files=1)
        try:
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise BadRequestError("no file: send the rate sheet as multipart form field `file`")
            return upload.filename or "upload.csv", await upload.read(limit + 1)
        finally:
            await form.close()
    if content_type not in _RAW_TYPES:
        raise UnsupportedFormatError(
            f"unsupported content type {content_type or 'none'!r}: send text/csv, "
            "application/json or a multipart form with a `file` field"
        )
    return _RAW_TYPES[content_type], await request.body()


@router.post(
    "",
    status_code=201,
    response_model=SheetOut,
    responses={
        200: {"model": SheetOut, "description": "Every row already in force; nothing stored"},
        422: {"model": RateSheetErrorOut},
        **error_responses(401, 403, 413, 415),
    },
    openapi_extra=upload_body(
        "file",
        many=False,
        other={
            "text/csv": {"type": "string", "description": "CSV with a header row"},
            "application/json": {
                "anyOf": [_RATE_LIST, {"type": "object", "properties": {"rates": _RATE_LIST}}]
            },
        },
    ),
)
async def upload_rates(
    request: Request,
    response: Response,
    sessions: SessionsDep,
    settings: SettingsDep,
    actor: AdminDep,
) -> SheetOut | JSONResponse:
    """Load a rate sheet (CSV or JSON); a bad row rejects the whole sheet (422). A sheet
    whose rows are all in force already, value for value (a retried upload), stores
    nothing: 200 with `unchanged: true` instead of 201."""
    limit = settings.max_upload_bytes
    if int(request.headers.get("content-length") or 0) > limit + 64 * 1024:
        raise DocumentTooLargeError(f"the rate sheet is larger than {limit / 1e6:.0f} MB")
    filename, data = await _read_upload(request, limit)
    if len(data) > limit:
        raise DocumentTooLargeError(f"the rate sheet is larger than {limit / 1e6:.0f} MB")
    try:
        result = await run_in_threadpool(_store, sessions, filename, data, actor)
    except RateSheetError as error:
        return _sheet_error(error)
    if result.unchanged:
        response.status_code = 200
    return SheetOut(
        sheet_id=result.sheet_id,
        filename=result.filename,
        rows=result.rows,
        superseded=result.superseded,
        unchanged=result.unchanged,
    )


__all__ = ["get_sessions", "router"]
