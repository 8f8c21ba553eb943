"""The audit log's repository on real SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy.orm import Session, sessionmaker

from db import audit


def test_record_and_list_newest_first(session_factory: sessionmaker[Session]) -> None:
    actor = audit.Actor("key:k1", name="alice", client="10.0.0.7")
    with session_factory.begin() as session:
        audit.record(session, actor, "rates.load", target="s" * 600, details={"rows": 3})
        audit.record(session, audit.Actor.cli(), "keys.revoke", target="k2")
    with session_factory() as session:
        newest, oldest = audit.list_events(session)
        assert (newest.action, oldest.action) == ("keys.revoke", "rates.load")
        assert newest.actor.startswith("cli:") and newest.details == {}
        assert (oldest.actor_name, oldest.client, oldest.details) == (
            "alice",
            "10.0.0.7",
            {"rows": 3},
        )
        assert oldest.target == "s" * 512  # cut to the column, never refused
        assert oldest.at.tzinfo is not None
        later = oldest.at + dt.timedelta(microseconds=1)
        assert audit.list_events(session, until=later.replace(tzinfo=None)) == [oldest]
        assert audit.list_events(session, actor="key:k1") == [oldest]


def test_an_unknown_action_writes_nothing(session_factory: sessionmaker[Session]) -> None:
    with (
        pytest.raises(ValueError, match=r"unknown audit action 'rates\.drop'"),
        session_factory.begin() as session,
    ):
        audit.record(session, audit.Actor("open"), "rates.drop")  # type: ignore[arg-type]
    with session_factory() as session:
        assert audit.list_events(session) == []
