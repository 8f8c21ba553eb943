"""Administrative writes by named API keys, and the audit log that records who made each
change and who exported feedback (real app, model, index, SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from bot.app import create_app
from bot.runtime import Runtime
from bot.settings import Settings
from db import api_keys
from db.models import RateSheet
from tests.rates.helpers import DEMO_SHEET

TOKEN = "s3cret-admin-token"
DOC = {"documents": [{"id": "atm-fees", "text": "Out-of-network ATM withdrawals cost $3."}]}


@pytest.fixture
def app_client(
    make_settings: Callable[..., Settings], database_url: str
) -> Iterator[tuple[TestClient, Runtime]]:
    settings = make_settings(database_url=database_url, admin_token=TOKEN)
    with TestClient(create_app(settings)) as client:
        yield client, client.app.state.runtime  # type: ignore[attr-defined]


def _key(runtime: Runtime, *scopes: str, name: str = "ops") -> tuple[str, dict[str, str]]:
    with runtime.sessions.begin() as session:
        row, secret = api_keys.create_api_key(session, name=name, scopes=list(scopes))
    return row.id, {"X-API-Key": secret}


def _events(client: TestClient, **params: Any) -> list[dict[str, Any]]:
    response = client.get("/v1/audit", params=params, headers={"X-API-Key": TOKEN})
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()["events"]
    return events


def test_each_operator_key_is_named_in_the_audit_log(
    app_client: tuple[TestClient, Runtime],
) -> None:
    client, runtime = app_client
    alice_id, alice = _key(runtime, "admin", name="alice (treasury ops)")
    bob_id, bob = _key(runtime, "admin", name="bob")

    added = client.post("/v1/documents", json=DOC, headers=alice)
    assert added.status_code == 200, added.text
    sheet = client.post(
        "/v1/rates", files={"file": ("rates.csv", DEMO_SHEET.read_bytes())}, headers=bob
    )
    assert sheet.status_code == 201, sheet.text
    again = client.post("/v1/documents", json=DOC, headers=alice)  # unchanged: no event
    assert again.json()["results"][0]["status"] == "unchanged"
    assert client.delete("/v1/documents/atm-fees", headers=alice).status_code == 204

    events = _events(client)
    assert [(e["action"], e["actor"]) for e in events] == [
        ("documents.delete", f"key:{alice_id}"),
        ("rates.load", f"key:{bob_id}"),
        ("documents.ingest", f"key:{alice_id}"),
    ]
    delete, load, ingest = events
    assert (delete["target"], delete["details"]) == ("atm-fees", {"chunks_removed": 1})
    assert load["actor_name"] == "bob" and load["target"] == sheet.json()["sheet_id"]
    assert load["details"] == {
        "filename": "rates.csv",
        "rows": 17,
        "superseded": 0,
        "unchanged": False,
    }
    assert ingest["actor_name"] == "alice (treasury ops)"
    assert ingest["details"]["documents"] == [
        {"id": "atm-fees", "status": "created", "version": 1, "source": "api#0"}
    ]
    assert ingest["client"] == "testclient"
    with runtime.sessions() as session:
        stored = session.get(RateSheet, load["target"])
        assert stored is not None and stored.loaded_by == f"key:{bob_id}"

    assert [e["action"] for e in _events(client, actor=f"key:{alice_id}")] == [
        "documents.delete",
        "documents.ingest",
    ]
    assert [e["actor"] for e in _events(client, action="rates.load")] == [f"key:{bob_id}"]
    assert len(_events(client, limit=1)) == 1
    assert _events(client, since="2999-01-01") == []


def test_admin_writes_refuse_other_keys_and_name_the_scope(
    app_client: tuple[TestClient, Runtime],
) -> None:
    client, runtime = app_client
    key_id, agent = _key(runtime, "agent", "export")
    refused = client.post("/v1/documents", json=DOC, headers=agent)
    assert refused.status_code == 403
    message = refused.json()["error"]["message"]
    assert key_id in message and "'admin'" in message and "teller keys create" in message

    admin_id, admin = _key(runtime, "admin")
    with runtime.sessions.begin() as session:
        api_keys.revoke_api_key(session, key_id=admin_id)
    revoked = client.post("/v1/documents", json=DOC, headers=admin)
    assert revoked.status_code == 401 and "revoked" in revoked.json()["error"]["message"]
    missing = client.delete("/v1/documents/atm-fees")
    assert missing.status_code == 401 and "'admin' scope" in missing.json()["error"]["message"]
    assert client.get("/v1/audit", headers=agent).status_code == 403
    assert client.get("/v1/audit").status_code == 401

    # The shared token still works (bootstrap, break-glass) and is recorded as such.
    token = {"Authorization": f"Bearer {TOKEN}"}
    assert client.post("/v1/documents", json=DOC, headers=token).status_code == 200
    assert [(e["action"], e["actor"], e["actor_name"]) for e in _events(client)] == [
        ("documents.ingest", "admin-token", None)
    ]


def test_exports_are_recorded_with_the_exporting_key(
    app_client: tuple[TestClient, Runtime],
) -> None:
    client, runtime = app_client
    key_id, exporter = _key(runtime, "export", name="ml team")
    response = client.get(
        "/v1/feedback/export",
        params={"format": "sft", "since": "2026-01-01", "rating": "up"},
        headers=exporter,
    )
    assert response.status_code == 200, response.text
    (event,) = _events(client, action="feedback.export")
    assert (event["actor"], event["actor_name"]) == (f"key:{key_id}", "ml team")
    assert event["target"] == response.headers["X-Teller-Export"]
    assert event["details"]["format"] == "sft"
    assert event["details"]["filters"] == {"since": "2026-01-01T00:00:00+00:00", "rating": "up"}
    assert event["details"]["counts"] == {"train": 0, "validation": 0}


def test_audit_log_queries_are_checked(app_client: tuple[TestClient, Runtime]) -> None:
    client, _ = app_client
    headers = {"Authorization": f"Bearer {TOKEN}"}
    bad_action = client.get("/v1/audit", params={"action": "rates.drop"}, headers=headers)
    assert bad_action.status_code == 422 and "action" in str(bad_action.json())
    bad_time = client.get("/v1/audit", params={"since": "0"}, headers=headers)
    assert bad_time.status_code == 422
    too_many = client.get("/v1/audit", params={"limit": 5000}, headers=headers)
    assert too_many.status_code == 422


def test_without_an_admin_token_writes_are_open_but_sent_keys_are_checked(
    make_settings: Callable[..., Settings], database_url: str
) -> None:
    settings = make_settings(database_url=database_url)
    with TestClient(create_app(settings)) as client:
        assert client.post("/v1/documents", json=DOC).status_code == 200
        wrong = client.post("/v1/documents", json=DOC, headers={"X-API-Key": "not-a-key"})
        assert wrong.status_code == 401
        (event,) = client.get("/v1/audit").json()["events"]
        assert (event["action"], event["actor"]) == ("documents.ingest", "open")


def test_reranker_training_is_recorded_even_when_nothing_is_learned(
    app_client: tuple[TestClient, Runtime],
) -> None:
    client, runtime = app_client
    key_id, admin = _key(runtime, "admin", name="ml ops")
    trained = client.post("/v1/reranker/train", headers=admin)
    assert trained.status_code == 200, trained.text
    assert trained.json()["version"] is None  # no votes yet
    (event,) = _events(client, action="reranker.train")
    assert (event["actor"], event["target"]) == (f"key:{key_id}", None)
    assert event["details"] == {"accepted": None, "reason": trained.json()["reason"]}
    assert "votes" in event["details"]["reason"]
