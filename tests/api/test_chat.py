"""`/v1/chat` and `/v1/answers` over HTTP against the demo bank (real model, index, DB)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient


def _events(body: str) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for block in body.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((lines["event"], json.loads(lines["data"])))
    return events


def test_chat_json_answer_and_stored_trace(client: TestClient) -> None:
    response = client.post(
        "/v1/chat", json={"message": "How do I freeze a lost card?", "channel": "web"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert {
        "conversation_id",
        "answer_id",
        "text",
        "citations",
        "confidence",
        "handoff_suggested",
        "degraded",
    } <= body.keys()
    assert body["citations"][0]["doc_id"] == "card-services"
    assert body["degraded"] is False

    stored = client.get(f"/v1/answers/{body['answer_id']}").json()
    assert stored["question"] == "How do I freeze a lost card?"
    assert stored["channel"] == "web"
    assert stored["trace"]["retrieved"][0]["doc_id"] == "card-services"
    assert stored["generator"] == "extractive"
    assert client.get("/v1/answers/does-not-exist").status_code == 404


def test_chat_streams_tokens_then_a_final_event(client: TestClient) -> None:
    response = client.post(
        "/v1/chat",
        json={"message": "what's your 30 year fixed rate?"},
        headers={"Accept": "text/event-stream"},
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = _events(response.text)
    assert events[-1][0] == "final"
    tokens = [data["text"] for name, data in events if name == "token"]
    assert len(tokens) > 3
    final = events[-1][1]
    assert "".join(tokens).strip() == final["text"].strip()
    assert "as of" in final["text"] and final["citations"][0]["kind"] == "rate"


def test_follow_up_over_http(client: TestClient) -> None:
    first = client.post("/v1/chat", json={"message": "what's your 30 year fixed rate?"}).json()
    second = client.post(
        "/v1/chat",
        json={"message": "and for 15 years?", "conversation_id": first["conversation_id"]},
    ).json()
    assert second["conversation_id"] == first["conversation_id"]
    assert "15-year" in second["text"]


def test_rates_listing_shows_only_current_rows(client: TestClient) -> None:
    listing = client.get("/v1/rates", params={"on": "2026-11-23"}).json()
    products = {r["product"] for r in listing["rates"]}
    assert "30-year fixed mortgage" in products
    assert {r["status"] for r in listing["rates"]} == {"current"}
    history = client.get("/v1/rates", params={"on": "2026-11-23", "history": "true"}).json()
    statuses = {r["status"] for r in history["rates"]}
    assert {"current", "expired", "future"} <= statuses  # old rows are kept, never deleted


@pytest.mark.parametrize(
    ("payload", "needle"),
    [
        ({"message": ""}, "message"),
        ({"message": "hi", "conversation_id": "../x"}, "conversation_id"),
        ({"message": "hi", "channel": "fax"}, "channel"),
        ({"text": "hi"}, "message"),
    ],
)
def test_bad_chat_requests_get_422_naming_the_field(
    client: TestClient, payload: dict[str, Any], needle: str
) -> None:
    response = client.post("/v1/chat", json=payload)
    assert response.status_code == 422
    assert needle in response.text


def test_a_body_far_over_the_field_limits_is_refused_unread(client: TestClient) -> None:
    """A 413 instead of parsing megabytes and echoing them back in a 422."""
    huge = {"message": "word " * 400_000}  # 2 MB; the field allows 4,000 characters
    response = client.post("/v1/chat", json=huge)
    assert response.status_code == 413
    assert len(response.content) < 1000
    too_long = client.post("/v1/chat", json={"message": "word " * 1000})
    assert too_long.status_code == 422
    assert too_long.json()["detail"][0]["loc"] == ["body", "message"]
