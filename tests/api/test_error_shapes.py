"""Errors that come from the framework rather than from Teller (unknown paths, wrong
methods, unreadable or oversized bodies) speak Teller's `{"error": {"type", "message"}}`
and say what to do; dates are ISO 8601 only (real demo bank, SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from bot.api.routes.internal import TOKEN_HEADER
from bot.runtime import Runtime
from db import api_keys
from tests.demo import demo_runtime

ACTIONS_TOKEN = "handoff-token"


@pytest.fixture
def runtime(make_settings: Any, database_url: str) -> Iterator[Runtime]:
    """The demo bank with the Rasa action server's token set."""
    with demo_runtime(make_settings(database_url=database_url, actions_token=ACTIONS_TOKEN)) as rt:
        yield rt


@pytest.fixture
def agent_headers(runtime: Runtime) -> dict[str, str]:
    with runtime.sessions.begin() as session:
        _, secret = api_keys.create_api_key(session, name="test agent", scopes=["agent"])
    return {"Authorization": f"Bearer {secret}"}


def _error(response: httpx.Response) -> dict[str, str]:
    body = response.json()
    assert set(body) == {"error"}, body
    error: dict[str, str] = body["error"]
    return error


def test_an_unknown_path_is_a_404_that_points_at_the_docs(client: TestClient) -> None:
    response = client.get("/v1/nowhere")
    assert response.status_code == 404
    assert _error(response) == {
        "type": "NotFound",
        "message": "no endpoint at /v1/nowhere; the API is listed at /docs",
    }


def test_a_domain_404_keeps_its_own_message(client: TestClient) -> None:
    response = client.get("/v1/documents/no-such-document")
    assert response.status_code == 404
    assert "no-such-document" in _error(response)["message"]


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "/v1/documents", "GET, POST"),
        ("OPTIONS", "/v1/rates", "GET, POST"),
        ("PATCH", "/v1/answers/some-answer/feedback", "GET, POST, DELETE"),
        ("DELETE", "/v1/chat", "POST"),
    ],
)
def test_a_wrong_method_lists_every_method_the_path_serves(
    client: TestClient, method: str, path: str, allowed: str
) -> None:
    """Starlette's 405 named only the first route's methods (`Allow: POST` for
    `/v1/documents`, which GET serves too)."""
    response = client.request(method, path)
    assert response.status_code == 405
    assert response.headers["allow"] == allowed
    assert _error(response)["message"] == f"{method} is not allowed here; use {allowed}"


def test_a_body_that_is_not_utf8_is_a_400_saying_what_to_send(client: TestClient) -> None:
    response = client.post(
        "/v1/chat", content=b'{"message": "k\xff"}', headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert _error(response) == {
        "type": "BadRequest",
        "message": "the request body could not be read: send JSON encoded as UTF-8",
    }


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
def test_an_oversized_body_is_a_413_in_tellers_shape(client: TestClient, declared: bool) -> None:
    """With Content-Length declared, Starlette answered a plain-text "Content Too Large"."""
    body = b'{"message": "' + b"word " * 400_000 + b'"}'
    content = body if declared else iter([body[:1000], body[1000:]])
    response = client.post(
        "/v1/chat", content=content, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/json"
    assert _error(response) == {
        "type": "RequestEntityTooLarge",
        "message": "the request body is larger than this endpoint accepts; send less",
    }


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/v1/rates?on=0", "on"),
        ("/v1/rates?on=1732406400", "on"),
        ("/v1/rates?on=24/11/2026", "on"),
    ],
)
def test_a_day_that_is_not_iso_8601_is_a_422_not_1970(
    client: TestClient, path: str, field: str
) -> None:
    """Pydantic reads a number as seconds since 1970: `?on=0` quoted 1 January 1970."""
    response = client.get(path)
    assert response.status_code == 422, response.text
    (error,) = response.json()["detail"]
    assert error["loc"] == ["query", field]
    assert "ISO 8601" in error["msg"]


def test_iso_days_and_moments_are_still_accepted(client: TestClient) -> None:
    assert client.get("/v1/rates?on=2026-11-24").json()["on"] == "2026-11-24"
    search = {"query": "mortgage rates", "filters": {"valid_on": "2026-11-24"}}
    assert client.post("/v1/search", json=search).status_code == 200
    bad = client.post("/v1/search", json={**search, "filters": {"valid_on": 0}})
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["body", "filters", "valid_on"]


@pytest.mark.parametrize("moment", ["2026-11-24", "2026-11-24T09:30:00Z", "2026-11-24 09:30"])
def test_feedback_windows_take_iso_moments_only(
    client: TestClient, agent_headers: dict[str, str], moment: str
) -> None:
    assert client.get(f"/v1/feedback?since={moment}", headers=agent_headers).status_code == 200
    refused = client.get("/v1/feedback/stats?until=0.5", headers=agent_headers)
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["query", "until"]


def test_a_handoff_whose_text_holds_nul_is_stored_without_it_and_can_be_read_back(
    client: TestClient,
) -> None:
    """The Rasa action's handoff text and reason went to SQL as sent (PostgreSQL: a 500)."""
    headers = {TOKEN_HEADER: ACTIONS_TOKEN}
    body = {
        "conversation_id": "conv-handoff-1",
        "message": "I want a person",
        "reason": "asked",
        "text": "A colleague\x00 will call you. Reference {reference}.",
    }
    response = client.post("/v1/internal/handoff", json=body, headers=headers)
    assert response.status_code == 200, response.text
    handoff = response.json()
    assert "\x00" not in handoff["text"]
    # The stored handoff searched nothing: its answer has no rewritten query (was a 500).
    stored = client.get(f"/v1/answers/{handoff['answer_id']}")
    assert stored.status_code == 200, stored.text
    assert stored.json()["rewritten_query"] is None
    assert stored.json()["text"] == handoff["text"]
    refused = client.post(
        "/v1/internal/handoff", json={**body, "reason": "as\x00ked"}, headers=headers
    )
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["body", "reason"]
