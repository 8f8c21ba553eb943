"""The audit log: who changed what Teller knows or who took data out, and when.

Every administrative change (documents, rate sheets, API keys, the reranker, the
embedding model) and every feedback export is one `AuditEvent`. Rows are only ever
added. Where the change itself is SQL (rate sheets, API keys) the event is written in
the same transaction, so there is no change without its record; document ingestion and
model switches also write the search index, so their events are written right after
the change commits.
"""

from __future__ import annotations

import datetime as dt
import getpass
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, get_args

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from db.base import utcnow
from db.errors import translating
from db.models import AuditEvent

AuditAction = Literal[
    "documents.ingest",
    "documents.delete",
    "rates.load",
    "keys.create",
    "keys.revoke",
    "reranker.train",
    "index.model_switch",
    "feedback.export",
]
ACTIONS: Final = frozenset(get_args(AuditAction))
MAX_LIST: Final = 1000


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acted: `id` is "admin-token", "key:<id>", "cli:<user>" or "open"; `name` the
    API key's name; `client` the caller's address (API requests)."""

    id: str
    name: str | None = None
    client: str | None = None

    @classmethod
    def cli(cls) -> Actor:
        """The operator running a `teller` command on this machine."""
        try:
            user = getpass.getuser()
        except (KeyError, OSError):  # no passwd entry (some containers), no USER
            user = "unknown"
        return cls(f"cli:{user}"[:200])


def record(
    session: Session,
    actor: Actor,
    action: AuditAction,
    *,
    target: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> AuditEvent:
    """Add one event to `session` (the caller commits, with the change it records)."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    event = AuditEvent(
        at=utcnow(),
        actor=actor.id[:200],
        actor_name=actor.name[:200] if actor.name else None,
        action=action,
        target=target[:512] if target else None,
        client=actor.client[:64] if actor.client else None,
        details=dict(details or {}),
    )
    with translating(f"recording audit event {action!r}"):
        session.add(event)
        session.flush()
    return event


def record_committed(
    sessions: sessionmaker[Session],
    actor: Actor,
    action: AuditAction,
    *,
    target: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> None:
    """`record` in a transaction of its own, for a change that committed elsewhere."""
    with sessions.begin() as session:
        record(session, actor, action, target=target, details=details)


def list_events(
    session: Session,
    *,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    action: str | None = None,
    actor: str | None = None,
    limit: int = 100,
) -> list[AuditEvent]:
    """Events newest first, filtered by time window (`since` inclusive, `until`
    exclusive; a time without an offset is UTC), exact action and exact actor id."""
    since, until = (_utc(moment) for moment in (since, until))
    statement = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(min(limit, MAX_LIST))
    if since is not None:
        statement = statement.where(AuditEvent.at >= since)
    if until is not None:
        statement = statement.where(AuditEvent.at < until)
    if action is not None:
        statement = statement.where(AuditEvent.action == action)
    if actor is not None:
        statement = statement.where(AuditEvent.actor == actor)
    with translating("reading the audit log"):
        return list(session.scalars(statement))


def _utc(moment: dt.datetime | None) -> dt.datetime | None:
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=dt.UTC)


def event_dict(event: AuditEvent) -> dict[str, Any]:
    """An event as JSON-ready values (the API's and the CLI's shape)."""
    return {
        "id": event.id,
        "at": event.at.isoformat(),
        "actor": event.actor,
        "actor_name": event.actor_name,
        "action": event.action,
        "target": event.target,
        "client": event.client,
        "details": event.details,
    }
