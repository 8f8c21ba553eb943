"""Reading Rasa's replies, and the Rasa client's error mapping (Rasa faked at HTTP level)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from bot.dialogue import (
    DIALOGUE_KIND,
    RasaClient,
    RasaError,
    RasaUnavailableError,
    answer_from_dict,
    result_from_messages,
)
from bot.rasa_process import free_port

CONVERSATION = "conv-0001"


def _answer(**overrides: Any) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "conversation_id": CONVERSATION,
        "answer_id": "7d1c8f5e-0000-4000-8000-000000000001",
        "text": "Our 30-year fixed mortgage rate is 6.125%.",
        "citations": [
            {
                "number": 1,
                "kind": "rate",
                "title": "Harbor Bank rate sheet",
                "doc_id": None,
                "version": None,
                "chunk_id": None,
                "section": ["Rates"],
                "url": None,
                "rate_row_id": 4,
                "snippet": "30-year fixed mortgage: 6.125%",
            }
        ],
        "confidence": 1.0,
        "handoff_suggested": False,
        "degraded": False,
        "kind": "rate",
        "choices": [],
        "handoff_reference": None,
    }
    answer.update(overrides)
    return answer


def test_a_teller_payload_is_the_answer() -> None:
    payload = _answer()
    result = result_from_messages(
        [
            {"recipient_id": CONVERSATION, "text": payload["text"]},
            {"recipient_id": CONVERSATION, "custom": {"teller": payload}},
        ],
        conversation_id=CONVERSATION,
    )
    assert result is not None
    assert result.as_dict() == payload
    assert result.citations[0].section == ("Rates",)


def test_text_before_the_payload_is_kept() -> None:
    payload = _answer(text="Here is the rate.")
    result = result_from_messages(
        [
            {"text": "Good question!"},
            {"text": "Here is the rate."},
            {"custom": {"teller": payload}},
        ],
        conversation_id=CONVERSATION,
    )
    assert result is not None
    assert result.text == "Good question!\n\nHere is the rate."
    assert result.answer_id == payload["answer_id"]


def test_text_only_is_a_dialogue_turn_with_buttons_as_choices() -> None:
    result = result_from_messages(
        [
            {
                "text": "Which term are you interested in: 15 or 30 years?",
                "buttons": [
                    {"title": "15 years", "payload": "15 years"},
                    {"title": "30 years", "payload": "30 years"},
                ],
            }
        ],
        conversation_id=CONVERSATION,
    )
    assert result is not None
    assert result.kind == DIALOGUE_KIND
    assert result.choices == ["15 years", "30 years"]
    assert result.citations == [] and not result.degraded and not result.handoff_suggested
    assert result.conversation_id == CONVERSATION


@pytest.mark.parametrize(
    "messages",
    [
        [],
        [{"text": "Sorry, I can't look that up right now."}, {"custom": {"teller_error": "down"}}],
        [{"image": "https://example.invalid/x.png"}],
    ],
)
def test_no_usable_answer_means_none(messages: list[dict[str, Any]]) -> None:
    assert result_from_messages(messages, conversation_id=CONVERSATION) is None


def test_answer_from_dict_round_trips() -> None:
    payload = _answer(kind="abstain", handoff_suggested=True, handoff_reference="HO-7D1C8F5E")
    assert answer_from_dict(payload).as_dict() == payload


def _client(handler: Any) -> RasaClient:
    return RasaClient("http://rasa.test", 5, token="t0k", transport=httpx.MockTransport(handler))


def test_send_posts_to_the_rest_channel_with_metadata() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=[{"recipient_id": "c", "text": "Hello!"}])

    assert _client(handler).send("conv-0001", "hi", metadata={"channel": "web"}) == [
        {"recipient_id": "c", "text": "Hello!"}
    ]
    assert seen[0].url.path == "/webhooks/rest/webhook"
    assert json.loads(seen[0].content) == {
        "sender": "conv-0001",
        "message": "hi",
        "metadata": {"channel": "web"},
    }


def test_parse_and_status_send_the_token() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.params["token"] == "t0k"
        return httpx.Response(200, json={"path": request.url.path})

    client = _client(handler)
    assert client.parse("hello") == {"path": "/model/parse"}
    assert client.status() == {"path": "/status"}


def test_server_errors_mean_unavailable() -> None:
    client = _client(lambda request: httpx.Response(503, text="loading"))
    with pytest.raises(RasaUnavailableError, match="503"):
        client.send("conv-0001", "hi")


def test_client_errors_and_bad_bodies_are_rasa_errors() -> None:
    with pytest.raises(RasaError, match="401"):
        _client(lambda request: httpx.Response(401, text="no")).status()
    with pytest.raises(RasaError, match="non-JSON"):
        _client(lambda request: httpx.Response(200, text="<html>")).send("conv-0001", "hi")
    with pytest.raises(RasaError, match="not a list"):
        _client(lambda request: httpx.Response(200, json={"a": 1})).send("conv-0001", "hi")


def test_nobody_listening_means_unavailable() -> None:
    client = RasaClient(f"http://127.0.0.1:{free_port()}", 2)
    try:
        with pytest.raises(RasaUnavailableError, match="unreachable"):
            client.send("conv-0001", "hi")
    finally:
        client.close()
