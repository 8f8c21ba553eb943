"""`/v1/assist`: suggestions for call-center agents, on the demo bank (real model, index, DB)."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import pytest
from fastapi.testclient import TestClient

from bot.assist import _META_KEY
from bot.runtime import Runtime
from db import api_keys
from db.models import Conversation

CARD = "Hi, I lost my debit card yesterday. How do I freeze it?"
GREETING = {"speaker": "agent", "text": "Thank you for calling Harbor Bank, how can I help?"}


def _key(runtime: Runtime, scope: str) -> dict[str, str]:
    with runtime.sessions.begin() as session:
        _, secret = api_keys.create_api_key(session, name=f"test {scope}", scopes=[scope])
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def agent(runtime: Runtime) -> dict[str, str]:
    """Headers with an API key of scope `agent`."""
    return _key(runtime, "agent")


def _assist(client: TestClient, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    response = client.post("/v1/assist", json=body, headers=headers)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


def test_assist_needs_a_key_of_scope_agent(client: TestClient, runtime: Runtime) -> None:
    body = {"transcript": [{"speaker": "customer", "text": CARD}]}
    assert client.post("/v1/assist", json=body).status_code == 401
    wrong = {"Authorization": "Bearer not-a-key"}
    assert client.post("/v1/assist", json=body, headers=wrong).status_code == 401
    assert client.get("/v1/assist").status_code == 401
    other = _key(runtime, "admin")
    assert client.post("/v1/assist", json=body, headers=other).status_code == 403
    assert client.get("/v1/assist/whatever-id", headers=other).status_code == 403


def test_knowledge_turn_gets_stored_suggestions_with_sources_and_passages(
    client: TestClient, agent: dict[str, str]
) -> None:
    data = _assist(client, agent, transcript=[GREETING, {"speaker": "customer", "text": CARD}])
    assert data["turn"] == 1
    assert data["rates"] == []
    assert len(data["passages"]) == 5
    assert data["passages"][0]["doc_id"] == "card-services"
    suggestions = data["suggestions"]
    assert 1 <= len(suggestions) <= 3
    assert "Freeze your card" in suggestions[0]["text"]
    for suggestion in suggestions:
        assert suggestion["citations"], suggestion
        assert 0.0 <= suggestion["confidence"] <= 1.0
        stored = client.get(f"/v1/answers/{suggestion['answer_id']}").json()
        assert stored["channel"] == "agent"
        assert stored["conversation_id"] == data["conversation_id"]
        assert stored["question"] == CARD
    # Alternates come from passages the first suggestion did not cite.
    primary = {c["chunk_id"] for c in suggestions[0]["citations"]}
    for alternate in suggestions[1:]:
        assert {c["chunk_id"] for c in alternate["citations"]}.isdisjoint(primary)
        trace = client.get(f"/v1/answers/{alternate['answer_id']}").json()["trace"]
        assert trace["variant"] == "assist-alternate"
        assert trace["grounding"]["ok"] is True
        coverage = trace["coverage"]
        assert not coverage["checked"] or coverage["value"] >= coverage["min"] == 0.25


def test_alternates_must_mention_what_the_caller_asked(
    client: TestClient, agent: dict[str, str]
) -> None:
    # The lost-card and daily-limit sections are only weakly close to this question
    # (cosine 0.375) and say nothing of express delivery or its cost.
    question = "How much does express card delivery cost?"
    data = _assist(client, agent, transcript=[{"speaker": "customer", "text": question}])
    texts = [s["text"] for s in data["suggestions"]]
    assert "Express delivery" in texts[0]
    assert not any(t.startswith(("Freeze your card", "Debit cards have")) for t in texts), texts
    for alternate in data["suggestions"][1:]:
        trace = client.get(f"/v1/answers/{alternate['answer_id']}").json()["trace"]
        coverage = trace["coverage"]
        assert not coverage["checked"] or coverage["value"] >= coverage["min"]


def test_rate_turn_lists_only_current_rates_for_that_product(
    client: TestClient, agent: dict[str, str]
) -> None:
    data = _assist(
        client,
        agent,
        transcript=[{"speaker": "customer", "text": "What's your 12 month CD rate right now?"}],
    )
    assert data["suggestions"][0]["kind"] == "rate"
    assert "as of" in data["suggestions"][0]["text"]
    rates = data["rates"]
    assert rates, data
    today = dt.date.today().isoformat()
    for row in rates:
        assert row["product"] == "certificate of deposit"
        assert row["term"] == "12 months" and row["term_months"] == 12
        assert row["effective_from"] <= today
        assert row["effective_until"] is None or row["effective_until"] >= today
    assert len(rates) == 1  # the expired 12-month row is never shown


def test_calls_stored_before_rates_had_term_months_still_reopen(
    client: TestClient, agent: dict[str, str], runtime: Runtime
) -> None:
    data = _assist(
        client,
        agent,
        transcript=[{"speaker": "customer", "text": "What's your 12 month CD rate right now?"}],
    )
    cid = data["conversation_id"]
    with runtime.sessions.begin() as session:
        conversation = session.get(Conversation, cid)
        assert conversation is not None
        meta = copy.deepcopy(conversation.meta)
        for record in meta[_META_KEY]["turns"]:
            for row in record["rates"]:
                del row["term_months"]  # as written by releases before the field
        conversation.meta = meta
    reopened = client.get(f"/v1/assist/{cid}", headers=agent)
    assert reopened.status_code == 200, reopened.text
    [row] = reopened.json()["turns"][0]["rates"]
    assert row["term"] == "12 months" and row["term_months"] is None


def test_repeated_turns_are_not_answered_twice_and_agent_lines_are_kept(
    client: TestClient, agent: dict[str, str]
) -> None:
    transcript: list[dict[str, str]] = [{"speaker": "customer", "text": CARD}]
    first = _assist(client, agent, transcript=transcript)
    cid = first["conversation_id"]
    ids = [s["answer_id"] for s in first["suggestions"]]

    again = _assist(client, agent, conversation_id=cid, transcript=transcript)
    assert [s["answer_id"] for s in again["suggestions"]] == ids

    transcript.append({"speaker": "agent", "text": "Let me check that for you."})
    after_agent = _assist(client, agent, conversation_id=cid, transcript=transcript)
    assert after_agent["turn"] == 0
    assert [s["answer_id"] for s in after_agent["suggestions"]] == ids

    # A follow-up is understood in the context of the call.
    transcript += [
        {"speaker": "customer", "text": "What's your 30 year fixed rate?"},
        {"speaker": "customer", "text": "and for 15 years?"},
    ]
    _assist(client, agent, conversation_id=cid, transcript=transcript[:3])
    follow = _assist(client, agent, conversation_id=cid, transcript=transcript)
    assert follow["turn"] == 3
    assert "15-year" in follow["suggestions"][0]["text"]

    reopened = client.get(f"/v1/assist/{cid}", headers=agent).json()
    assert reopened["transcript"] == transcript
    assert [t["turn"] for t in reopened["turns"]] == [0, 2, 3]
    assert [s["answer_id"] for s in reopened["turns"][0]["suggestions"]] == ids


def test_reopen_shows_suggestions_with_the_agents_feedback(
    client: TestClient, agent: dict[str, str]
) -> None:
    data = _assist(client, agent, transcript=[GREETING, {"speaker": "customer", "text": CARD}])
    cid = data["conversation_id"]
    answer_id = data["suggestions"][0]["answer_id"]
    correction = "Freeze the card in the app under Cards, then Freeze card."
    vote = client.post(
        f"/v1/answers/{answer_id}/feedback",
        json={"rating": "down", "correction": correction, "rater": {"kind": "agent", "id": "a1"}},
        headers=agent,
    )
    assert vote.status_code in (200, 201), vote.text

    calls = client.get("/v1/assist", headers=agent).json()["conversations"]
    assert calls[0]["conversation_id"] == cid
    assert calls[0]["preview"] == CARD and calls[0]["turns"] == 2

    reopened = client.get(f"/v1/assist/{cid}", headers=agent)
    assert reopened.status_code == 200
    turn = reopened.json()["turns"][0]
    assert turn["turn"] == 1 and turn["text"] == CARD
    assert turn["passages"] and turn["rates"] == []
    feedback = turn["suggestions"][0]["feedback"]
    assert [(f["rating"], f["correction"]) for f in feedback] == [("down", correction)]
    assert client.get("/v1/assist/no-such-call", headers=agent).status_code == 404


def test_agent_only_transcripts_are_saved_without_suggestions(
    client: TestClient, agent: dict[str, str]
) -> None:
    data = _assist(client, agent, transcript=[GREETING])
    assert data["turn"] is None and data["suggestions"] == [] and data["rates"] == []
    reopened = client.get(f"/v1/assist/{data['conversation_id']}", headers=agent).json()
    assert reopened["transcript"] == [GREETING] and reopened["turns"] == []


def test_bad_assist_requests_get_422_naming_the_field(
    client: TestClient, agent: dict[str, str]
) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"transcript": []}, "transcript"),
        ({"transcript": [{"speaker": "robot", "text": "hi"}]}, "speaker"),
        ({"transcript": [{"speaker": "customer", "text": ""}]}, "text"),
        ({"transcript": [GREETING], "conversation_id": "../x"}, "conversation_id"),
        ({"transcript": [GREETING], "extra": 1}, "extra"),
    ]
    for body, needle in cases:
        response = client.post("/v1/assist", json=body, headers=agent)
        assert response.status_code == 422, body
        assert needle in response.text, body
