"""`/v1/chat` end to end through the real Rasa model.

The chat app shares the Teller API's runtime with its `dialogue` pointed at the
running Rasa; Rasa's actions call that separate Teller API over HTTP.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from bot.api.deps import get_runtime
from bot.app import create_app
from bot.dialogue import DialogueService
from tests.rasa.conftest import TellerServer

pytestmark = pytest.mark.slow  # the Teller API loads the embedding model


@pytest.fixture(scope="module")
def chat(teller_api: TellerServer, dialogue: DialogueService) -> Iterator[TestClient]:
    runtime = dataclasses.replace(teller_api.runtime, dialogue=dialogue)
    app = create_app(teller_api.settings, runtime=teller_api.runtime)
    app.dependency_overrides[get_runtime] = lambda: runtime
    with TestClient(app) as client:
        yield client


def _events(body: str) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for block in body.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((lines["event"], json.loads(lines["data"])))
    return events


def test_chat_greeting(chat: TestClient) -> None:
    response = chat.post("/v1/chat", json={"message": "good morning!", "channel": "web"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert "virtual assistant" in body["text"] and body["degraded"] is False


def test_chat_rate_question_asks_for_the_term_then_answers(chat: TestClient) -> None:
    first = chat.post("/v1/chat", json={"message": "What's your fixed mortgage rate?"}).json()
    assert first["choices"] == ["15 years", "30 years"]
    second = chat.post(
        "/v1/chat",
        json={"message": first["choices"][1], "conversation_id": first["conversation_id"]},
    ).json()
    assert second["kind"] == "rate" and "6.125%" in second["text"]
    assert second["citations"][0]["kind"] == "rate"
    assert second["answer_id"] and second["conversation_id"] == first["conversation_id"]


def test_chat_handoff(chat: TestClient) -> None:
    body = chat.post("/v1/chat", json={"message": "connect me to an agent please"}).json()
    assert body["handoff_reference"] and body["handoff_reference"] in body["text"]


def test_chat_stream_through_rasa(chat: TestClient) -> None:
    response = chat.post(
        "/v1/chat",
        json={"message": "How long does a transfer to another bank take?"},
        headers={"Accept": "text/event-stream"},
    )
    assert response.status_code == 200
    events = _events(response.text)
    assert events[-1][0] == "final" and {e for e, _ in events[:-1]} == {"token"}
    final = events[-1][1]
    assert final["kind"] == "knowledge" and final["citations"]
    assert "".join(data["text"] for _, data in events[:-1]) == final["text"]
