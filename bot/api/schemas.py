"""Request and response bodies of the HTTP API."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from retrieval.parsing import has_control_characters, printable
from retrieval.types import SearchFilters


def _text(value: str) -> str:
    cleaned = printable(value)
    if not cleaned.strip():
        raise ValueError("needs some text: it is empty or only spaces and control characters")
    return cleaned


def _identifier(value: str) -> str:
    if has_control_characters(value):
        raise ValueError("must not contain control characters (such as NUL)")
    return value


def _iso_8601(shape: re.Pattern[str], example: str) -> Callable[[object], object]:
    """Pydantic reads a number (`0`, `"0.5"`) as seconds since 1970; a bank's API reads
    only ISO 8601, so `?on=0` is a 422 rather than the rates of 1 January 1970."""

    def check(value: object) -> object:
        if isinstance(value, dt.date):
            return value
        if not isinstance(value, str) or not shape.fullmatch(value):
            raise ValueError(f"must be an ISO 8601 date such as {example}")
        return value

    return check


_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATETIME = re.compile(
    r"\d{4}-\d{2}-\d{2}"  # a day, optionally with a time and an offset
    r"([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:?\d{2})?)?"
)

IsoDate = Annotated[dt.date, BeforeValidator(_iso_8601(_DATE, "2026-11-24"))]
"""A calendar day written `YYYY-MM-DD`."""
IsoDateTime = Annotated[
    dt.datetime, BeforeValidator(_iso_8601(_DATETIME, "2026-11-24 or 2026-11-24T09:30:00Z"))
]
"""A moment in ISO 8601 (a bare day means its midnight; no offset means UTC)."""

JSON_BODY_LIMIT = 1024 * 1024
"""Bytes a JSON request body may have (413 beyond; its fields allow far less): without
it a 30 MB chat body was parsed whole and echoed back in a 60 MB 422."""
TRANSCRIPT_BODY_LIMIT = 16 * 1024 * 1024
"""Bytes an assist request may have: up to 500 turns of 4,000 characters, escaped."""

MAX_OFFSET = 2**31 - 1
"""The largest list offset: beyond it databases refuse the number (PostgreSQL: a 500)."""

# What people type or paste loses invisible control characters (NUL breaks PostgreSQL;
# a pasted form feed means a space); ids holding one are refused, never changed.
Text = Annotated[str, AfterValidator(_text)]
"""A person's words, required: control characters removed, then not blank."""
Printable = Annotated[str, AfterValidator(printable)]
"""Optional free text: control characters removed."""
Identifier = Annotated[str, AfterValidator(_identifier)]
"""An id or name chosen by a client: refused when it holds a control character."""


class FiltersIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    product: Printable | None = Field(default=None, max_length=200)
    document_type: Printable | None = Field(default=None, max_length=200)
    valid_on: IsoDate | None = Field(default=None, description="Only passages valid on this date.")

    def to_domain(self) -> SearchFilters:
        return SearchFilters(
            product=self.product, document_type=self.document_type, valid_on=self.valid_on
        )


class SearchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: Text = Field(min_length=1, max_length=2000)
    k: int = Field(default=5, ge=1, le=100)
    filters: FiltersIn = Field(default_factory=FiltersIn)
    mode: Literal["hybrid", "bm25", "dense"] = "hybrid"


class ChunkOut(BaseModel):
    """A retrieved passage as every response shows it (search hits, console passages)."""

    rank: int
    chunk_id: int
    doc_id: str
    version: int
    title: str
    section: list[str]
    text: str
    score: float


class HitOut(ChunkOut):
    metadata: dict[str, Any]
    bm25_score: float | None
    dense_score: float | None


class SearchOut(BaseModel):
    query: str
    mode: str
    hits: list[HitOut]
    timings_ms: dict[str, float]
    reranker_version: str | None = Field(
        default=None, description="The feedback reranker that ordered the hits (None: off)."
    )


class DocumentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Identifier | None = Field(default=None, min_length=1, max_length=255, pattern=r"^[^\s/]+$")
    title: Printable = Field(default="", max_length=1000)
    text: Text = Field(min_length=1)
    source: Printable | None = Field(default=None, max_length=1024)
    metadata: dict[str, Any] = Field(default_factory=dict)


class DocumentsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    documents: list[DocumentIn] = Field(min_length=1, max_length=1000)


class IngestItemOut(BaseModel):
    source: str
    status: Literal["created", "updated", "unchanged", "failed"]
    doc_id: str | None = None
    version: int | None = None
    chunks: int = 0
    error: str | None = None
    error_type: str | None = None


class IngestOut(BaseModel):
    results: list[IngestItemOut]
    failed: int
    succeeded: int


class DocumentOut(BaseModel):
    id: str
    title: str
    source: str
    version: int
    content_hash: str
    chunks: int
    metadata: dict[str, Any]
    created_at: dt.datetime
    updated_at: dt.datetime


class DocumentListOut(BaseModel):
    documents: list[DocumentOut]
    total: int


class ChatIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    conversation_id: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9_-]{8,36}$", description="Omit to start a conversation."
    )
    message: Text = Field(min_length=1, max_length=4000)
    channel: Literal["web", "agent", "api", "cli"] = "api"


class CitationOut(BaseModel):
    number: int
    kind: Literal["passage", "rate"]
    title: str
    doc_id: str | None = None
    version: int | None = None
    chunk_id: int | None = None
    section: list[str] = Field(default_factory=list)
    url: str | None = None
    rate_row_id: int | None = None
    snippet: str = ""


class ChatOut(BaseModel):
    conversation_id: str
    answer_id: str
    text: str
    citations: list[CitationOut]
    confidence: float
    handoff_suggested: bool
    degraded: bool
    kind: Literal["knowledge", "rate", "clarification", "abstain", "dialogue"]
    choices: list[str] = Field(
        default_factory=list, description="Quick replies for a clarification."
    )
    handoff_reference: str | None = None


class AnswerOut(BaseModel):
    id: str
    conversation_id: str | None
    question: str
    rewritten_query: str | None = Field(
        description="What was searched; null for a handoff, which searches nothing."
    )
    text: str
    citations: list[dict[str, Any]]
    confidence: float
    handoff_suggested: bool
    abstained: bool
    degraded: bool
    kind: str
    trace: dict[str, Any]
    generator: str
    generator_version: str
    reranker_version: str | None
    timings_ms: dict[str, float]
    channel: str
    created_at: dt.datetime


# -- agent assist (/v1/assist; the work is in `bot.assist`) ----------------------------


class TurnIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    speaker: Literal["customer", "agent"]
    text: Text = Field(min_length=1, max_length=4000)


class AssistIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    conversation_id: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9_-]{8,36}$", description="Omit to start a call."
    )
    transcript: list[TurnIn] = Field(
        min_length=1, max_length=500, description="The call so far, oldest turn first."
    )


class SuggestionOut(BaseModel):
    answer_id: str
    text: str
    citations: list[CitationOut]
    confidence: float
    kind: str
    handoff_reference: str | None = None
    feedback: list[dict[str, Any]] = Field(
        default_factory=list, description="Votes on this suggestion (when reopened)."
    )


class PassageOut(ChunkOut):
    url: str | None = None


class RateRowOut(BaseModel):
    """A rate row's numbers, strings exactly as stored (the rate list adds its status)."""

    id: int
    product: str
    term: str | None
    term_months: int | None = None  # absent from console turns stored before it was added
    tier: str | None
    rate_percent: str
    apr_percent: str | None
    apy_percent: str | None
    effective_from: dt.date
    effective_until: dt.date | None
    source: str


class AssistOut(BaseModel):
    conversation_id: str
    turn: int | None = Field(description="Index in the transcript of the turn answered.")
    suggestions: list[SuggestionOut]
    passages: list[PassageOut]
    rates: list[RateRowOut] = Field(description="Current rates, when the turn asks for one.")


class AssistTurnOut(BaseModel):
    turn: int
    text: str
    suggestions: list[SuggestionOut]
    passages: list[PassageOut]
    rates: list[RateRowOut]
    created_at: dt.datetime | None = None


class AssistConversationOut(BaseModel):
    conversation_id: str
    channel: str
    created_at: dt.datetime
    updated_at: dt.datetime
    transcript: list[TurnIn]
    turns: list[AssistTurnOut]


class AssistSummaryOut(BaseModel):
    conversation_id: str
    created_at: dt.datetime
    updated_at: dt.datetime
    turns: int
    preview: str


class AssistListOut(BaseModel):
    conversations: list[AssistSummaryOut]


def inline_schema(model: type[BaseModel]) -> dict[str, Any]:
    """`model`'s JSON schema with its `$defs` written in place.

    For the OpenAPI request body of a route that reads its body itself (to accept
    multipart uploads and JSON on one path), which FastAPI therefore cannot describe:
    refs to `#/$defs/...` would not resolve inside the OpenAPI document.
    """
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return resolve(defs[ref.removeprefix("#/$defs/")])
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(value) for value in node]
        return node

    resolved: dict[str, Any] = resolve(schema)
    return resolved


def upload_body(field: str, *, many: bool, other: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """`openapi_extra` declaring a required body: a multipart form whose `field` holds
    one file (or several, `many`), or a body of one of the `other` media types (media
    type -> schema)."""
    binary = {"type": "string", "format": "binary"}
    files = {"type": "array", "items": binary, "minItems": 1} if many else binary
    form = {"type": "object", "required": [field], "properties": {field: files}}
    content: dict[str, Any] = {"multipart/form-data": {"schema": form}}
    content.update({media: {"schema": schema} for media, schema in other.items()})
    return {"requestBody": {"required": True, "content": content}}
