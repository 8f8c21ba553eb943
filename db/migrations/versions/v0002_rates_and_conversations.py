"""Rate sheets and their rows; conversations, messages and stored answers.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _big_int_pk() -> sa.types.TypeEngine[int]:
    # SQLite only autoincrements an INTEGER PRIMARY KEY.
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "rate_sheets",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("loaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("loaded_by", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rate_sheets")),
    )

    op.create_table(
        "rate_rows",
        sa.Column("id", _big_int_pk(), autoincrement=True, nullable=False),
        sa.Column("sheet_id", sa.String(length=36), nullable=False),
        sa.Column("product", sa.String(length=200), nullable=False),
        sa.Column("term", sa.String(length=100), nullable=True),
        sa.Column("term_months", sa.Integer(), nullable=True),
        sa.Column("tier", sa.String(length=200), nullable=True),
        sa.Column("rate_percent", sa.String(length=32), nullable=False),
        sa.Column("apr_percent", sa.String(length=32), nullable=True),
        sa.Column("apy_percent", sa.String(length=32), nullable=True),
        sa.Column("effective_from", sa.Date(), nullable=False),
        sa.Column("effective_until", sa.Date(), nullable=True),
        sa.Column("source", sa.String(length=1024), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("superseded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("superseded_by_sheet", sa.String(length=36), nullable=True),
        sa.CheckConstraint(
            "effective_until IS NULL OR effective_until >= effective_from",
            name=op.f("ck_rate_rows_effective_range"),
        ),
        # No cascade: rate rows are audit records of what was quoted.
        sa.ForeignKeyConstraint(
            ["sheet_id"], ["rate_sheets.id"], name=op.f("fk_rate_rows_sheet_id_rate_sheets")
        ),
        sa.ForeignKeyConstraint(
            ["superseded_by_sheet"],
            ["rate_sheets.id"],
            name=op.f("fk_rate_rows_superseded_by_sheet_rate_sheets"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rate_rows")),
        # Never reuse an id: answer traces refer to rate rows by id.
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_rate_rows_product_effective_from",
        "rate_rows",
        ["product", "effective_from"],
        unique=False,
    )
    op.create_index(op.f("ix_rate_rows_sheet_id"), "rate_rows", ["sheet_id"], unique=False)

    op.create_table(
        "conversations",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("metadata", _json(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversations")),
    )

    op.create_table(
        "answers",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("conversation_id", sa.String(length=36), nullable=True),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("rewritten_query", sa.Text(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("citations", _json(), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("handoff_suggested", sa.Boolean(), nullable=False),
        sa.Column("abstained", sa.Boolean(), nullable=False),
        sa.Column("degraded", sa.Boolean(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("trace", _json(), nullable=False),
        sa.Column("generator", sa.String(length=200), nullable=False),
        sa.Column("generator_version", sa.String(length=200), nullable=False),
        sa.Column("reranker_version", sa.String(length=200), nullable=True),
        sa.Column("timings_ms", _json(), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        # No cascade: answers are audit records.
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_answers_conversation_id_conversations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_answers")),
    )
    op.create_index(
        op.f("ix_answers_conversation_id"), "answers", ["conversation_id"], unique=False
    )
    op.create_index(op.f("ix_answers_created_at"), "answers", ["created_at"], unique=False)

    op.create_table(
        "messages",
        sa.Column("id", _big_int_pk(), autoincrement=True, nullable=False),
        sa.Column("conversation_id", sa.String(length=36), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("answer_id", sa.String(length=36), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("role IN ('user', 'assistant')", name=op.f("ck_messages_role")),
        sa.ForeignKeyConstraint(
            ["answer_id"], ["answers.id"], name=op.f("fk_messages_answer_id_answers")
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_messages_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_messages")),
        sqlite_autoincrement=True,
    )
    # Serves "the last N messages of a conversation" and the cascade.
    op.create_index(
        "ix_messages_conversation_id_id", "messages", ["conversation_id", "id"], unique=False
    )
    op.create_index(op.f("ix_messages_answer_id"), "messages", ["answer_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_messages_answer_id"), table_name="messages")
    op.drop_index("ix_messages_conversation_id_id", table_name="messages")
    op.drop_table("messages")
    op.drop_index(op.f("ix_answers_created_at"), table_name="answers")
    op.drop_index(op.f("ix_answers_conversation_id"), table_name="answers")
    op.drop_table("answers")
    op.drop_table("conversations")
    op.drop_index(op.f("ix_rate_rows_sheet_id"), table_name="rate_rows")
    op.drop_index("ix_rate_rows_product_effective_from", table_name="rate_rows")
    op.drop_table("rate_rows")
    op.drop_table("rate_sheets")
