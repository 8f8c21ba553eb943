"""Repository functions for reranker weight sets (`reranker_versions`).

Keyword-only functions that take a `Session` and never commit, like `db.repository`.
A weight set is stored once under its version id with its parameters and validation
metrics (`feedback.adapter` trains, chooses and loads them); headers list the stored
sets without loading their weights.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.base import utcnow
from db.errors import translating
from db.models import RerankerVersion


def save_reranker_version(
    session: Session,
    *,
    version_id: str,
    kind: str,
    embedding_model: str,
    dimension: int,
    weights: bytes,
    params: Mapping[str, Any],
    metrics: Mapping[str, Any],
) -> RerankerVersion:
    """Store a trained reranker weight set under `version_id` (unique)."""
    row = RerankerVersion(
        id=version_id,
        kind=kind,
        embedding_model=embedding_model,
        dimension=dimension,
        weights=weights,
        params=dict(params),
        metrics=dict(metrics),
        created_at=utcnow(),
    )
    with translating(f"storing reranker version {version_id!r}"):
        session.add(row)
        session.flush()
    return row


def renew_reranker_version(session: Session, *, version_id: str) -> bool:
    """Make a stored weight set the newest again (it was trained again on the same
    inputs, so "latest" should serve it, not one trained in between); False when there
    is none with this id."""
    row = get_reranker_version(session, version_id=version_id)
    if row is None:
        return False
    with translating(f"renewing reranker version {version_id!r}"):
        row.created_at = utcnow()
        session.flush()
    return True


def get_reranker_version(session: Session, *, version_id: str) -> RerankerVersion | None:
    """The stored weight set with this id, or None."""
    with translating(f"reading reranker version {version_id!r}"):
        return session.get(RerankerVersion, version_id)


def reranker_version_headers(
    session: Session,
    *,
    kind: str | None = None,
    embedding_model: str | None = None,
    version_id: str | None = None,
) -> list[tuple[str, str, dict[str, Any]]]:
    """`(id, embedding model, metrics)` of stored weight sets, newest first, without
    loading their weights."""
    statement = select(
        RerankerVersion.id, RerankerVersion.embedding_model, RerankerVersion.metrics
    ).order_by(RerankerVersion.created_at.desc(), RerankerVersion.id)
    if kind is not None:
        statement = statement.where(RerankerVersion.kind == kind)
    if embedding_model is not None:
        statement = statement.where(RerankerVersion.embedding_model == embedding_model)
    if version_id is not None:
        statement = statement.where(RerankerVersion.id == version_id)
    with translating("listing reranker versions"):
        return [(row[0], row[1], dict(row[2] or {})) for row in session.execute(statement)]


def list_reranker_versions(
    session: Session, *, kind: str | None = None, embedding_model: str | None = None
) -> list[RerankerVersion]:
    """Stored weight sets, newest first, optionally of one kind and embedding model."""
    statement = select(RerankerVersion).order_by(
        RerankerVersion.created_at.desc(), RerankerVersion.id
    )
    if kind is not None:
        statement = statement.where(RerankerVersion.kind == kind)
    if embedding_model is not None:
        statement = statement.where(RerankerVersion.embedding_model == embedding_model)
    with translating("listing reranker versions"):
        return list(session.scalars(statement))
