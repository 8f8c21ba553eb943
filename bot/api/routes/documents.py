"""Knowledge administration: add, list, read and delete documents."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from bot.api.auth import AdminDep
from bot.api.deps import KnowledgeDep, RuntimeDep
from bot.api.errors import BadRequestError, ErrorOut, error_responses, status_for
from bot.api.schemas import (
    MAX_OFFSET,
    DocumentListOut,
    DocumentOut,
    DocumentsIn,
    IngestItemOut,
    IngestOut,
    inline_schema,
    upload_body,
)
from bot.knowledge import IngestOutcome, audit_ingest
from db import audit
from db import repository as repo
from db.types import DocumentSummary
from retrieval.errors import DocumentNotFoundError, DocumentTooLargeError, UnsupportedFormatError
from retrieval.parsers import normalize_metadata
from retrieval.types import ParsedDocument, Section

router = APIRouter(prefix="/v1/documents", tags=["documents"])

_ALL_FAILED = {
    413: "The request, or every file of it, is too large",
    415: "Not JSON or multipart, or no file of a type Teller reads",
    422: "Every document failed (each result says why)",
}
_ERROR_TYPES = {
    "UnsupportedFormatError": 415,
    "DocumentTooLargeError": 413,
}


def _ingest_response(outcomes: list[IngestOutcome]) -> JSONResponse:
    body = IngestOut(
        results=[IngestItemOut.model_validate(o, from_attributes=True) for o in outcomes],
        failed=sum(o.status == "failed" for o in outcomes),
        succeeded=sum(o.status != "failed" for o in outcomes),
    )
    if body.failed == 0:
        status = 200
    elif body.succeeded:
        status = 207
    else:
        status = _ERROR_TYPES.get(outcomes[0].error_type or "", 422)
    return JSONResponse(body.model_dump(mode="json"), status_code=status)


@router.post(
    "",
    response_model=IngestOut,
    responses={
        207: {"model": IngestOut},
        **error_responses(401, 403),
        # The request as a whole (ErrorOut), or every document of it (IngestOut).
        **{
            code: {"model": ErrorOut | IngestOut, "description": description}
            for code, description in _ALL_FAILED.items()
        },
    },
    openapi_extra=upload_body(
        "files", many=True, other={"application/json": inline_schema(DocumentsIn)}
    ),
)
async def add_documents(request: Request, knowledge: KnowledgeDep, actor: AdminDep) -> JSONResponse:
    """Add or update documents: multipart files (`files`) or JSON `{documents: [...]}`."""
    content_type = request.headers.get("content-type", "")
    limit = knowledge.max_upload_bytes
    declared = int(request.headers.get("content-length") or 0)
    if content_type.startswith("multipart/form-data"):
        # A request may carry several files, each up to the limit.
        if declared > limit * 20:
            raise DocumentTooLargeError(
                f"the upload is {declared / 1e6:.1f} MB; send at most 20 files of "
                f"{limit / 1e6:.0f} MB each per request"
            )
        form = await request.form(max_files=20)
        uploads = [v for v in form.getlist("files") if isinstance(v, UploadFile)]
        if not uploads:
            raise BadRequestError("no files: send them as multipart form field `files`")
        files = []
        for upload in uploads:
            data = await upload.read(limit + 1)
            files.append((upload.filename or "upload", data, upload.content_type))
        file_outcomes = await run_in_threadpool(knowledge.ingest_files, files)
        await form.close()
        await run_in_threadpool(audit_ingest, knowledge.sessions, actor, file_outcomes)
        return _ingest_response(file_outcomes)
    media = content_type.split(";")[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        raise UnsupportedFormatError(
            f"unsupported content type {media or 'none'!r}: send application/json "
            '({"documents": [...]}) or a multipart form with the files as `files`'
        )
    if declared > limit:
        raise DocumentTooLargeError(f"the request is larger than {limit / 1e6:.0f} MB")
    raw = await request.body()
    try:
        payload = DocumentsIn.model_validate(json.loads(raw.decode("utf-8")))
    except UnicodeDecodeError as exc:
        raise BadRequestError(
            f"the body is not UTF-8 text (byte {exc.start}): send JSON encoded as UTF-8"
        ) from exc
    except json.JSONDecodeError as exc:
        raise BadRequestError(f"the body is not valid JSON: {exc}") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise BadRequestError(f"invalid document list at `{where}`: {first['msg']}") from exc
    parsed: list[ParsedDocument] = []
    outcomes: list[IngestOutcome] = []
    for position, item in enumerate(payload.documents):
        source = item.source or f"api#{position}"
        try:
            metadata = normalize_metadata(item.metadata)
        except Exception as exc:
            outcomes.append(
                IngestOutcome(
                    source=source,
                    status="failed",
                    doc_id=item.id,
                    error=str(exc),
                    error_type=type(exc).__name__,
                )
            )
            continue
        parsed.append(
            ParsedDocument(
                title=item.title,
                sections=(Section(path=(), text=item.text),),
                metadata=metadata,
                doc_id=item.id,
                source=source,
            )
        )
    outcomes.extend(await run_in_threadpool(knowledge.ingest_documents, parsed))
    await run_in_threadpool(audit_ingest, knowledge.sessions, actor, outcomes)
    return _ingest_response(outcomes)


@router.get("", response_model=DocumentListOut)
def list_documents(
    runtime: RuntimeDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> DocumentListOut:
    """List live documents, newest first."""
    with runtime.sessions() as session:
        rows = repo.list_documents(session, limit=limit, offset=offset)
        total = repo.count_documents(session)
    return DocumentListOut(documents=[_doc_out(r) for r in rows], total=total)


@router.get("/{doc_id}", response_model=DocumentOut, responses=error_responses(404))
def get_document(doc_id: str, runtime: RuntimeDep) -> DocumentOut:
    """One live document's current version."""
    with runtime.sessions() as session:
        summary = repo.get_document_summary(session, doc_id=doc_id)
    if summary is None:
        raise DocumentNotFoundError(f"no document with id {doc_id!r}")
    return _doc_out(summary)


@router.delete("/{doc_id}", status_code=204, responses=error_responses(401, 403, 404))
async def delete_document(doc_id: str, knowledge: KnowledgeDep, actor: AdminDep) -> Response:
    """Delete a document; its passages disappear from the next search."""
    removed = await run_in_threadpool(knowledge.delete_document, doc_id)
    await run_in_threadpool(
        audit.record_committed,
        knowledge.sessions,
        actor,
        "documents.delete",
        target=doc_id,
        details={"chunks_removed": removed},
    )
    return Response(status_code=204)


def _doc_out(summary: DocumentSummary) -> DocumentOut:
    return DocumentOut(
        id=summary.id,
        title=summary.title,
        source=summary.source,
        version=summary.version,
        content_hash=summary.content_hash,
        chunks=summary.chunk_count,
        metadata=dict(summary.metadata),
        created_at=summary.created_at,
        updated_at=summary.updated_at,
    )


__all__ = ["router", "status_for"]
