"""SQLAlchemy models of every Teller table: knowledge (documents, versions, chunks, rate
sheets), conversations and answers, feedback, API keys, reranker versions and the
audit log.

The schema itself is owned by the Alembic migrations in `db/migrations/versions`; a test
checks that these models and the migrations agree on both SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from db.base import Base, BigIntPK, JSONType, UTCDateTime, utcnow


class Document(Base):
    """The current version of a knowledge-base document, live or soft-deleted.

    `id` is the public document id. A soft-deleted document keeps its row (with
    `deleted_at` set) so that upserting the same id later continues its version history.
    """

    __tablename__ = "documents"
    __table_args__ = (CheckConstraint("version >= 1", name="version_positive"),)

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    source: Mapped[str] = mapped_column(String(1024))
    title: Mapped[str] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSONType)
    content_hash: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    deleted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, index=True)

    def __repr__(self) -> str:
        deleted = self.deleted_at is not None
        return f"Document(id={self.id!r}, version={self.version}, deleted={deleted})"


class DocumentVersion(Base):
    """One stored version of a document, kept for audit: answers cite (doc id, version).

    Rows are never updated or deleted by the repository, and the foreign key has no
    cascade, so hard-deleting a document with a history fails instead of erasing it.
    """

    __tablename__ = "document_versions"
    __table_args__ = (
        UniqueConstraint("document_id", "version"),
        CheckConstraint("version >= 1", name="version_positive"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    document_id: Mapped[str] = mapped_column(ForeignKey("documents.id"))
    version: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(1024))
    title: Mapped[str] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSONType)
    content_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    def __repr__(self) -> str:
        return f"DocumentVersion(document_id={self.document_id!r}, version={self.version})"


class Chunk(Base):
    """A passage of the current version of a live document, as indexed for retrieval.

    `id` is the key that indexes (embedded, Elasticsearch) use for the chunk. Chunks of
    a replaced or deleted version are deleted; their text stays in `DocumentVersion`.
    The unique constraint's leading `document_id` column serves lookups and cascades, so
    there is no separate index on it.
    """

    __tablename__ = "chunks"
    __table_args__ = (
        UniqueConstraint("document_id", "version", "ordinal"),
        CheckConstraint("ordinal >= 0", name="ordinal_non_negative"),
        # Keys are never reused (SQLite would reuse the highest deleted rowid otherwise):
        # indexes and answer traces refer to chunks by key.
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    document_id: Mapped[str] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    ordinal: Mapped[int] = mapped_column(Integer)
    section_path: Mapped[list[str]] = mapped_column(JSONType)
    text: Mapped[str] = mapped_column(Text)
    context: Mapped[str] = mapped_column(Text)
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSONType)
    embedding: Mapped[bytes | None] = mapped_column(LargeBinary)
    embedding_model: Mapped[str | None] = mapped_column(String(512))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    document: Mapped[Document] = relationship(lazy="raise_on_sql")

    def __repr__(self) -> str:
        return (
            f"Chunk(id={self.id}, document_id={self.document_id!r}, "
            f"version={self.version}, ordinal={self.ordinal})"
        )


class RateSheet(Base):
    """One uploaded rate sheet (CSV or JSON): the unit of loading and of superseding.

    Loading a sheet is atomic; its rows are `RateRow`s with `sheet_id` = this id.
    """

    __tablename__ = "rate_sheets"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    filename: Mapped[str] = mapped_column(String(255))
    rows: Mapped[int] = mapped_column(Integer)
    content_hash: Mapped[str] = mapped_column(String(64))
    loaded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    loaded_by: Mapped[str | None] = mapped_column(String(200))

    def __repr__(self) -> str:
        return f"RateSheet(id={self.id!r}, filename={self.filename!r}, rows={self.rows})"


class RateRow(Base):
    """One rate of one product, term and tier, effective over a date range.

    Rates are kept as the strings the sheet gave ("6.125"), so an answer quotes exactly
    what the bank published. Rows are never deleted: a later sheet with a row for the
    same (product, term, tier, effective_from) sets `superseded_at` and
    `superseded_by_sheet` here instead, so every quoted rate stays auditable.
    """

    __tablename__ = "rate_rows"
    __table_args__ = (
        Index("ix_rate_rows_product_effective_from", "product", "effective_from"),
        CheckConstraint(
            "effective_until IS NULL OR effective_until >= effective_from",
            name="effective_range",
        ),
        # Answer traces refer to rate rows by id: never reuse one.
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    sheet_id: Mapped[str] = mapped_column(ForeignKey("rate_sheets.id"), index=True)
    product: Mapped[str] = mapped_column(String(200))
    term: Mapped[str | None] = mapped_column(String(100))
    term_months: Mapped[int | None] = mapped_column(Integer)
    tier: Mapped[str | None] = mapped_column(String(200))
    rate_percent: Mapped[str] = mapped_column(String(32))
    apr_percent: Mapped[str | None] = mapped_column(String(32))
    apy_percent: Mapped[str | None] = mapped_column(String(32))
    effective_from: Mapped[dt.date] = mapped_column(Date)
    effective_until: Mapped[dt.date | None] = mapped_column(Date)
    source: Mapped[str] = mapped_column(String(1024))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    superseded_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    superseded_by_sheet: Mapped[str | None] = mapped_column(ForeignKey("rate_sheets.id"))

    def __repr__(self) -> str:
        return (
            f"RateRow(id={self.id}, product={self.product!r}, term={self.term!r}, "
            f"tier={self.tier!r}, rate={self.rate_percent!r}, from={self.effective_from})"
        )


class Conversation(Base):
    """A chat or call: the messages exchanged on one channel (web, agent, api, cli)."""

    __tablename__ = "conversations"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    channel: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSONType)

    def __repr__(self) -> str:
        return f"Conversation(id={self.id!r}, channel={self.channel!r})"


class Answer(Base):
    """An answer Teller gave, with everything needed to audit and learn from it.

    `trace` holds what the answer was built from (retrieved chunks with ids, versions,
    scores and ranks; rate row ids; filters; the grounding report). Answers are audit
    records: the foreign key to the conversation has no cascade, so hard-deleting a
    conversation that was answered fails instead of erasing its answers.
    """

    __tablename__ = "answers"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    conversation_id: Mapped[str | None] = mapped_column(ForeignKey("conversations.id"), index=True)
    question: Mapped[str] = mapped_column(Text)
    rewritten_query: Mapped[str | None] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    citations: Mapped[list[Any]] = mapped_column(JSONType)
    confidence: Mapped[float] = mapped_column(Float)
    handoff_suggested: Mapped[bool] = mapped_column(Boolean)
    abstained: Mapped[bool] = mapped_column(Boolean)
    degraded: Mapped[bool] = mapped_column(Boolean)
    kind: Mapped[str] = mapped_column(String(32))
    trace: Mapped[dict[str, Any]] = mapped_column(JSONType)
    generator: Mapped[str] = mapped_column(String(200))
    generator_version: Mapped[str] = mapped_column(String(200))
    reranker_version: Mapped[str | None] = mapped_column(String(200))
    timings_ms: Mapped[dict[str, float]] = mapped_column(JSONType)
    channel: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)

    def __repr__(self) -> str:
        return f"Answer(id={self.id!r}, kind={self.kind!r}, conversation={self.conversation_id!r})"


class Message(Base):
    """One turn of a conversation; an assistant turn links the `Answer` it showed."""

    __tablename__ = "messages"
    __table_args__ = (
        Index("ix_messages_conversation_id_id", "conversation_id", "id"),
        CheckConstraint("role IN ('user', 'assistant')", name="role"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)
    answer_id: Mapped[str | None] = mapped_column(ForeignKey("answers.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    def __repr__(self) -> str:
        return (
            f"Message(id={self.id}, conversation_id={self.conversation_id!r}, role={self.role!r})"
        )


class Feedback(Base):
    """The live vote of one rater on one answer (at most one; see `FeedbackEvent`).

    Voting again updates this row; withdrawing deletes it. Every change is also appended
    to `feedback_events`, so the history survives both. `question_embedding` is the
    answer's retrieval query embedded by `embedding_model` (float32 bytes): reranking
    finds similar past questions with it without re-embedding. `passages` snapshots the
    passages the answer was built from (chunk id, doc id, version, rank, text, cited) at
    vote time, so a dataset built after the documents changed still shows what the user
    saw. `correction_source` is the passage an agent's correction was matched to.
    """

    __tablename__ = "feedback"
    __table_args__ = (
        UniqueConstraint("answer_id", "rater_kind", "rater_id"),
        CheckConstraint("rating IN ('up', 'down')", name="rating"),
        CheckConstraint("rater_kind IN ('customer', 'agent')", name="rater_kind"),
        Index("ix_feedback_rater_kind_rater_id", "rater_kind", "rater_id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    answer_id: Mapped[str] = mapped_column(ForeignKey("answers.id"), index=True)
    rater_kind: Mapped[str] = mapped_column(String(16))
    rater_id: Mapped[str] = mapped_column(String(200))
    rating: Mapped[str] = mapped_column(String(8))
    reasons: Mapped[list[str]] = mapped_column(JSONType)
    comment: Mapped[str | None] = mapped_column(Text)
    correction: Mapped[str | None] = mapped_column(Text)
    correction_source: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    passages: Mapped[list[Any]] = mapped_column(JSONType)
    channel: Mapped[str] = mapped_column(String(32))
    product: Mapped[str | None] = mapped_column(String(200))
    question_embedding: Mapped[bytes | None] = mapped_column(LargeBinary)
    embedding_model: Mapped[str | None] = mapped_column(String(512))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    def __repr__(self) -> str:
        return (
            f"Feedback(id={self.id!r}, answer_id={self.answer_id!r}, "
            f"rater={self.rater_kind}:{self.rater_id!r}, rating={self.rating!r})"
        )


class FeedbackEvent(Base):
    """One change to a vote, append-only: created, replaced or withdrawn.

    The id only grows (rerankers read the events after the last one they applied).
    `idempotency_key` (unique per rater) and `request_hash` make a retried request a
    no-op that returns the first outcome.
    """

    __tablename__ = "feedback_events"
    __table_args__ = (
        UniqueConstraint("rater_kind", "rater_id", "idempotency_key"),
        CheckConstraint("action IN ('created', 'replaced', 'withdrawn')", name="action"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    feedback_id: Mapped[str] = mapped_column(String(36), index=True)
    answer_id: Mapped[str] = mapped_column(ForeignKey("answers.id"), index=True)
    rater_kind: Mapped[str] = mapped_column(String(16))
    rater_id: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(16))
    rating: Mapped[str | None] = mapped_column(String(8))
    reasons: Mapped[list[str]] = mapped_column(JSONType)
    comment: Mapped[str | None] = mapped_column(Text)
    correction: Mapped[str | None] = mapped_column(Text)
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    request_hash: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    def __repr__(self) -> str:
        return f"FeedbackEvent(id={self.id}, feedback_id={self.feedback_id!r}, {self.action})"


class ApiKey(Base):
    """An API key: only its SHA-256 is stored; the key itself is shown once, at creation."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[list[str]] = mapped_column(JSONType)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"ApiKey(id={self.id!r}, name={self.name!r}, scopes={self.scopes!r})"


class RerankerVersion(Base):
    """A trained feedback-reranking weight set (the query/passage adapter), versioned.

    Stored in SQL so every API replica loads the same weights; settings pick one by
    `id` (or the newest), which is how a bad version is rolled back.
    """

    __tablename__ = "reranker_versions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    embedding_model: Mapped[str] = mapped_column(String(512))
    dimension: Mapped[int] = mapped_column(Integer)
    weights: Mapped[bytes] = mapped_column(LargeBinary)
    params: Mapped[dict[str, Any]] = mapped_column(JSONType)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSONType)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)

    def __repr__(self) -> str:
        return f"RerankerVersion(id={self.id!r}, kind={self.kind!r})"


class AuditEvent(Base):
    """One administrative change or data export: who, when, what, on which object.

    Append-only: nothing in Teller updates or deletes these rows. `actor` is
    "admin-token", "key:<api key id>", "cli:<os user>" or "open" (no admin token set:
    development); `actor_name` the key's name; `client` the caller's address for API
    requests.
    """

    __tablename__ = "audit_events"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(200), index=True)
    actor_name: Mapped[str | None] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64), index=True)
    target: Mapped[str | None] = mapped_column(String(512))
    client: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(JSONType)

    def __repr__(self) -> str:
        return f"AuditEvent(id={self.id!r}, action={self.action!r}, actor={self.actor!r})"
