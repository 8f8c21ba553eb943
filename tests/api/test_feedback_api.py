"""Feedback over HTTP against the demo bank: votes, retries, withdrawal, review, export,
and the API keys that guard them (real model, index, SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from typing import Any

from fastapi.testclient import TestClient

from bot.runtime import Runtime
from db import api_keys

CARD = "How do I freeze a lost card?"


def _key(runtime: Runtime, scope: str) -> dict[str, str]:
    with runtime.sessions.begin() as session:
        _, secret = api_keys.create_api_key(session, name=f"test {scope}", scopes=[scope])
    return {"Authorization": f"Bearer {secret}"}


def _answer(client: TestClient, message: str = CARD) -> str:
    response = client.post("/v1/chat", json={"message": message, "channel": "web"})
    assert response.status_code == 200, response.text
    answer_id: str = response.json()["answer_id"]
    return answer_id


def _vote(client: TestClient, answer_id: str, headers: dict[str, str] | None = None, **body: Any):  # type: ignore[no-untyped-def]
    payload = {"rating": "up", "rater": {"kind": "customer", "id": "widget-1"}, **body}
    return client.post(f"/v1/answers/{answer_id}/feedback", json=payload, headers=headers or {})


def test_vote_replace_retry_and_withdraw(client: TestClient, runtime: Runtime) -> None:
    answer_id = _answer(client)
    agent = _key(runtime, "agent")

    first = _vote(client, answer_id, {"Idempotency-Key": "req-1"}, reasons=["clear"])
    assert first.status_code == 201, first.text
    assert first.json()["status"] == "created" and first.json()["rater"]["kind"] == "customer"
    retry = _vote(client, answer_id, {"Idempotency-Key": "req-1"}, reasons=["clear"])
    assert retry.status_code == 200 and retry.json()["status"] == "replayed"
    assert retry.json()["id"] == first.json()["id"]
    same = _vote(client, answer_id, reasons=["clear"])
    assert same.json()["status"] == "unchanged"
    changed = _vote(client, answer_id, rating="down", comment="It did not help")
    assert changed.status_code == 200 and changed.json()["status"] == "replaced"

    conflict = _vote(client, answer_id, {"Idempotency-Key": "req-1"}, rating="down")
    assert conflict.status_code == 409
    assert "Idempotency-Key" in conflict.json()["error"]["message"]

    state = client.get(f"/v1/answers/{answer_id}/feedback", headers=agent).json()
    assert [(v["rating"], v["comment"]) for v in state["votes"]] == [("down", "It did not help")]
    assert [h["action"] for h in state["history"]] == ["created", "replaced"]

    url = f"/v1/answers/{answer_id}/feedback?rater_kind=customer&rater_id=widget-1"
    assert client.delete(url).json() == {"withdrawn": True}
    assert client.delete(url).json() == {"withdrawn": False}
    state = client.get(f"/v1/answers/{answer_id}/feedback", headers=agent).json()
    assert state["votes"] == []
    assert [h["action"] for h in state["history"]] == ["created", "replaced", "withdrawn"]

    stored = client.get(f"/v1/answers/{answer_id}").json()
    assert stored["trace"]["retrieved"]  # the vote rates an answer with its full trace


def test_unknown_answers_and_invalid_bodies(client: TestClient) -> None:
    missing = _vote(client, "no-such-answer")
    assert missing.status_code == 404
    assert "no-such-answer" in missing.json()["error"]["message"]
    assert (
        client.delete(
            "/v1/answers/no-such-answer/feedback?rater_kind=customer&rater_id=x"
        ).status_code
        == 404
    )

    answer_id = _answer(client)
    url = f"/v1/answers/{answer_id}/feedback"
    cases = [
        ({"rating": "meh", "rater": {"kind": "customer", "id": "x"}}, "rating"),
        ({"rating": "up"}, "rater"),
        ({"rating": "up", "rater": {"kind": "robot", "id": "x"}}, "kind"),
        ({"rating": "up", "rater": {"kind": "customer", "id": ""}}, "id"),
        ({"rating": "up", "rater": {"kind": "customer", "id": "x"}, "stars": 5}, "stars"),
        (
            {"rating": "up", "rater": {"kind": "customer", "id": "x"}, "comment": "x" * 4001},
            "comment",
        ),
        (
            {"rating": "up", "rater": {"kind": "customer", "id": "x"}, "reasons": ["r"] * 11},
            "reasons",
        ),
    ]
    for body, field in cases:
        response = client.post(url, json=body)
        assert response.status_code == 422, body
        assert field in response.text
    long_reason = {"rating": "up", "rater": {"kind": "customer", "id": "x"}, "reasons": ["x" * 65]}
    assert client.post(url, json=long_reason).status_code == 422


def test_agent_votes_and_the_review_screen_need_keys(client: TestClient, runtime: Runtime) -> None:
    answer_id = _answer(client)
    agent, export = _key(runtime, "agent"), _key(runtime, "export")
    as_agent = {"rating": "down", "rater": {"kind": "agent", "id": "a-7"}, "reasons": ["wrong"]}
    url = f"/v1/answers/{answer_id}/feedback"

    assert client.post(url, json=as_agent).status_code == 401
    assert (
        client.post(url, json=as_agent, headers={"Authorization": "Bearer tk_x_nope"}).status_code
        == 401
    )
    forbidden = client.post(url, json=as_agent, headers=export)
    assert forbidden.status_code == 403 and "'agent'" in forbidden.json()["error"]["message"]
    assert client.post(url, json=as_agent, headers=agent).status_code == 201
    x_api_key = {"X-API-Key": agent["Authorization"].removeprefix("Bearer ")}
    assert (
        client.post(url, json={**as_agent, "correction": "Call us."}, headers=x_api_key).status_code
        == 200
    )
    _vote(client, answer_id, reasons=["clear"])  # a customer needs no key

    unauthorized = client.get("/v1/feedback")
    assert unauthorized.status_code == 401
    assert "teller keys create --scope agent" in unauthorized.json()["error"]["message"]
    assert unauthorized.headers["WWW-Authenticate"] == "Bearer"
    assert client.get("/v1/feedback", headers=export).status_code == 403
    assert client.get("/v1/feedback/stats", headers=export).status_code == 403
    listed = client.get("/v1/feedback", headers=agent).json()
    assert listed["total"] == 2 and {i["rater"]["kind"] for i in listed["items"]} == {
        "agent",
        "customer",
    }
    assert listed["items"][0]["question"] == CARD
    down = client.get("/v1/feedback?rating=down&channel=web&reason=wrong", headers=agent).json()
    assert down["total"] == 1 and down["items"][0]["correction"] == "Call us."
    assert client.get("/v1/feedback?channel=agent", headers=agent).json()["total"] == 0
    assert client.get("/v1/feedback?since=2999-01-01", headers=agent).json()["total"] == 0
    assert client.get("/v1/feedback?rating=sideways", headers=agent).status_code == 422

    stats = client.get("/v1/feedback/stats", headers=agent).json()
    assert (stats["total"], stats["up"], stats["down"]) == (2, 1, 1)
    assert stats["by_rater_kind"] == {
        "agent": {"up": 0, "down": 1},
        "customer": {"up": 1, "down": 0},
    }
    assert stats["by_reason"] == {"wrong": 1, "clear": 1}

    with runtime.sessions.begin() as session:  # a revoked key stops working at once
        (key,) = [k for k in api_keys.list_api_keys(session) if k.scopes == ["agent"]]
        api_keys.revoke_api_key(session, key_id=key.id)
    assert client.get("/v1/feedback", headers=agent).status_code == 401


def test_export_needs_the_export_scope(client: TestClient, runtime: Runtime) -> None:
    answer_id = _answer(client)
    _vote(client, answer_id)
    other = _answer(client, "What is the overdraft fee?")
    _vote(client, other, rating="down")

    assert client.get("/v1/feedback/export?format=sft").status_code == 401
    assert (
        client.get("/v1/feedback/export?format=sft", headers=_key(runtime, "agent")).status_code
        == 403
    )
    export = _key(runtime, "export")
    response = client.get("/v1/feedback/export?format=kto&validation_fraction=0", headers=export)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/x-ndjson")
    rows = [json.loads(line) for line in response.text.splitlines()]
    assert sorted(row["label"] for row in rows) == [False, True]
    assert response.headers["X-Teller-Export-Rows"] == str(len(rows))
    manifest = client.get(
        "/v1/feedback/export?format=kto&split=manifest&validation_fraction=0", headers=export
    ).json()
    assert manifest["format"] == "kto" and manifest["counts"]["train"] == len(rows)
    again = client.get("/v1/feedback/export?format=kto&validation_fraction=0", headers=export)
    assert again.text == response.text  # deterministic
    assert client.get("/v1/feedback/export?format=csv", headers=export).status_code == 422
    bad_window = "/v1/feedback/export?format=sft&since=2026-02-01&until=2026-01-01"
    assert client.get(bad_window, headers=export).status_code == 422
    exports = runtime.settings.data_dir / "exports"
    assert len(list(exports.iterdir())) == 3  # every export is kept with its manifest
