"""API keys: created with scopes, stored as SHA-256 hashes, shown once, revocable.

A key looks like ``tk_<id>_<secret>``: the id names the key in listings and logs, the
secret (32 random bytes) is what makes it unguessable. Only the SHA-256 of the whole
key is stored; a fast hash is enough for random 256-bit secrets (there is no
dictionary to attack), and lookups are by an indexed unique column.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Iterable
from typing import Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.base import utcnow
from db.errors import NotFoundError, translating
from db.models import ApiKey

SCOPES: Final = frozenset({"export", "agent", "admin"})
PREFIX: Final = "tk_"
# Recording every use would turn each request into a write; once a minute is enough.
TOUCH_INTERVAL: Final = dt.timedelta(minutes=1)


class ApiKeyNotFound(NotFoundError):
    """No API key has the given id."""


def hash_key(key: str) -> str:
    """The SHA-256 hex digest stored for `key`."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _scopes(scopes: Iterable[str]) -> list[str]:
    wanted = sorted(set(scopes))
    if not wanted:
        raise ValueError(f"give at least one scope: {', '.join(sorted(SCOPES))}")
    unknown = [s for s in wanted if s not in SCOPES]
    if unknown:
        raise ValueError(
            f"unknown scope {', '.join(unknown)}; scopes are {', '.join(sorted(SCOPES))}"
        )
    return wanted


def create_api_key(session: Session, *, name: str, scopes: Iterable[str]) -> tuple[ApiKey, str]:
    """Create a key with `scopes`; returns the row and the key (not stored anywhere)."""
    if not name or len(name) > 200:
        raise ValueError("the key name must be 1-200 characters long")
    key_id = secrets.token_hex(6)
    key = f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    row = ApiKey(
        id=key_id,
        name=name,
        key_hash=hash_key(key),
        scopes=_scopes(scopes),
        created_at=utcnow(),
        last_used_at=None,
        revoked_at=None,
    )
    with translating("creating an API key"):
        session.add(row)
        session.flush()
    return row, key


def list_api_keys(session: Session, *, include_revoked: bool = True) -> list[ApiKey]:
    """Keys, oldest first (without secrets: none are stored)."""
    statement = select(ApiKey).order_by(ApiKey.created_at, ApiKey.id)
    if not include_revoked:
        statement = statement.where(ApiKey.revoked_at.is_(None))
    with translating("listing API keys"):
        return list(session.scalars(statement))


def revoke_api_key(session: Session, *, key_id: str) -> ApiKey:
    """Revoke a key now (idempotent); raises `ApiKeyNotFound` for an unknown id."""
    with translating(f"revoking API key {key_id!r}"):
        row = session.get(ApiKey, key_id)
        if row is None:
            raise ApiKeyNotFound(f"no API key with id {key_id!r}; see `teller keys list`")
        if row.revoked_at is None:
            row.revoked_at = utcnow()
            session.flush()
        return row


def find_api_key(session: Session, *, key: str) -> ApiKey | None:
    """The live (not revoked) key matching `key`, or None; records its use."""
    if not key.startswith(PREFIX) or len(key) > 200:
        return None
    with translating("checking an API key"):
        row = session.scalars(select(ApiKey).where(ApiKey.key_hash == hash_key(key))).one_or_none()
        if row is None or row.revoked_at is not None:
            return None
        # The hash lookup already matched; compare again in constant time for good measure.
        if not secrets.compare_digest(row.key_hash, hash_key(key)):
            return None
        now = utcnow()
        if row.last_used_at is None or now - row.last_used_at > TOUCH_INTERVAL:
            row.last_used_at = now
            session.flush()
        return row
