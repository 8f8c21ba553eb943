"""Feedback votes and their history, API keys, feedback-reranker weight sets.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _big_int_pk() -> sa.types.TypeEngine[int]:
    # SQLite only autoincrements an INTEGER PRIMARY KEY.
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("scopes", _json(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
    )

    op.create_table(
        "reranker_versions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("embedding_model", sa.String(length=512), nullable=False),
        sa.Column("dimension", sa.Integer(), nullable=False),
        sa.Column("weights", sa.LargeBinary(), nullable=False),
        sa.Column("params", _json(), nullable=False),
        sa.Column("metrics", _json(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reranker_versions")),
    )
    op.create_index(
        op.f("ix_reranker_versions_created_at"), "reranker_versions", ["created_at"], unique=False
    )

    op.create_table(
        "feedback",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("answer_id", sa.String(length=36), nullable=False),
        sa.Column("rater_kind", sa.String(length=16), nullable=False),
        sa.Column("rater_id", sa.String(length=200), nullable=False),
        sa.Column("rating", sa.String(length=8), nullable=False),
        sa.Column("reasons", _json(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("correction", sa.Text(), nullable=True),
        sa.Column("correction_source", _json(), nullable=True),
        sa.Column("passages", _json(), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("product", sa.String(length=200), nullable=True),
        sa.Column("question_embedding", sa.LargeBinary(), nullable=True),
        sa.Column("embedding_model", sa.String(length=512), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "rater_kind IN ('customer', 'agent')", name=op.f("ck_feedback_rater_kind")
        ),
        sa.CheckConstraint("rating IN ('up', 'down')", name=op.f("ck_feedback_rating")),
        # No cascade: votes are audit records of what users thought of an answer.
        sa.ForeignKeyConstraint(
            ["answer_id"], ["answers.id"], name=op.f("fk_feedback_answer_id_answers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feedback")),
        sa.UniqueConstraint(
            "answer_id",
            "rater_kind",
            "rater_id",
            name=op.f("uq_feedback_answer_id_rater_kind_rater_id"),
        ),
    )
    op.create_index(op.f("ix_feedback_answer_id"), "feedback", ["answer_id"], unique=False)
    op.create_index(op.f("ix_feedback_created_at"), "feedback", ["created_at"], unique=False)
    # Serves the per-rater caps of the reranker.
    op.create_index(
        "ix_feedback_rater_kind_rater_id", "feedback", ["rater_kind", "rater_id"], unique=False
    )

    op.create_table(
        "feedback_events",
        sa.Column("id", _big_int_pk(), autoincrement=True, nullable=False),
        sa.Column("feedback_id", sa.String(length=36), nullable=False),
        sa.Column("answer_id", sa.String(length=36), nullable=False),
        sa.Column("rater_kind", sa.String(length=16), nullable=False),
        sa.Column("rater_id", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("rating", sa.String(length=8), nullable=True),
        sa.Column("reasons", _json(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("correction", sa.Text(), nullable=True),
        sa.Column("idempotency_key", sa.String(length=200), nullable=True),
        sa.Column("request_hash", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "action IN ('created', 'replaced', 'withdrawn')",
            name=op.f("ck_feedback_events_action"),
        ),
        sa.ForeignKeyConstraint(
            ["answer_id"], ["answers.id"], name=op.f("fk_feedback_events_answer_id_answers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feedback_events")),
        sa.UniqueConstraint(
            "rater_kind",
            "rater_id",
            "idempotency_key",
            name=op.f("uq_feedback_events_rater_kind_rater_id_idempotency_key"),
        ),
        # Never reuse an id: rerankers read the events after the last id they applied.
        sqlite_autoincrement=True,
    )
    op.create_index(
        op.f("ix_feedback_events_answer_id"), "feedback_events", ["answer_id"], unique=False
    )
    op.create_index(
        op.f("ix_feedback_events_feedback_id"), "feedback_events", ["feedback_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_feedback_events_feedback_id"), table_name="feedback_events")
    op.drop_index(op.f("ix_feedback_events_answer_id"), table_name="feedback_events")
    op.drop_table("feedback_events")
    op.drop_index("ix_feedback_rater_kind_rater_id", table_name="feedback")
    op.drop_index(op.f("ix_feedback_created_at"), table_name="feedback")
    op.drop_index(op.f("ix_feedback_answer_id"), table_name="feedback")
    op.drop_table("feedback")
    op.drop_index(op.f("ix_reranker_versions_created_at"), table_name="reranker_versions")
    op.drop_table("reranker_versions")
    op.drop_table("api_keys")
