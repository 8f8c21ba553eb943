"""Invisible control characters (NUL above all, which PostgreSQL refuses in text and
JSON) never reach the database: people's words lose them, ids holding one are refused
with a 4xx naming the field, rate sheets name the row. On SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from bot.runtime import Runtime

pytestmark = pytest.mark.slow


def test_a_message_with_nul_and_form_feed_is_answered_and_stored_without_them(
    client: TestClient,
) -> None:
    response = client.post("/v1/chat", json={"message": "How do I freeze\x00 a lost\x0ccard?"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["citations"][0]["doc_id"] == "card-services"
    stored = client.get(f"/v1/answers/{body['answer_id']}").json()
    assert stored["question"] == "How do I freeze a lost card?"


@pytest.mark.parametrize("accept", ["application/json", "text/event-stream"])
@pytest.mark.parametrize("message", ["   ", "\x00", " \x0c\n\x0b "])
def test_a_message_with_nothing_to_read_is_a_422_naming_the_field(
    client: TestClient, message: str, accept: str
) -> None:
    response = client.post("/v1/chat", json={"message": message}, headers={"Accept": accept})
    assert response.status_code == 422, response.text
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "message"]
    assert "needs some text" in error["msg"]


def test_a_blank_search_or_assist_turn_is_a_422(client: TestClient, runtime: Runtime) -> None:
    search = client.post("/v1/search", json={"query": " \x00 "})
    assert search.status_code == 422
    assert search.json()["detail"][0]["loc"] == ["body", "query"]
    found = client.post("/v1/search", json={"query": "freeze\x00 card"})
    assert found.status_code == 200
    assert found.json()["query"] == "freeze card"


def test_documents_lose_control_characters_and_an_id_with_one_is_refused(
    client: TestClient,
) -> None:
    doc = {
        "id": "nul-bytes",
        "title": "Wire\x00 cut-off",
        "text": "Wires sent\x00 before 4 p.m. leave the same day.\x0cLater ones go the next day.",
        "metadata": {"product": "wire\x00s", "tags": ["ops\x00"]},
    }
    created = client.post("/v1/documents", json={"documents": [doc]})
    assert created.status_code == 200, created.text
    assert created.json()["results"][0]["status"] == "created"
    stored = client.get("/v1/documents/nul-bytes").json()
    assert stored["title"] == "Wire cut-off"
    assert stored["metadata"]["product"] == "wires"
    assert stored["metadata"]["tags"] == ["ops"]
    hits = client.post("/v1/search", json={"query": "wire cut-off same day"}).json()["hits"]
    assert hits[0]["doc_id"] == "nul-bytes"
    assert "\x00" not in hits[0]["text"] and "Later ones" in hits[0]["text"]

    refused = client.post("/v1/documents", json={"documents": [{**doc, "id": "nul\x00id"}]})
    assert 400 <= refused.status_code < 500
    assert "documents.0.id" in refused.text and "control characters" in refused.text

    upload = client.post(
        "/v1/documents",
        files=[
            ("files", ("notes.txt", b"Branch hours\x00\n\nOpen 9 to 5\x00 on weekdays.\n", None))
        ],
    )
    assert upload.status_code == 200, upload.text
    (result,) = upload.json()["results"]
    assert result["status"] == "created"
    assert client.get(f"/v1/documents/{result['doc_id']}").json()["title"] == "Branch hours"


def test_a_rate_sheet_with_a_nul_names_the_row_and_loads_nothing(client: TestClient) -> None:
    before = client.get("/v1/rates").json()
    sheet = (
        "product,term,rate_percent,effective_from,source\n"
        "certificate of deposit,6 months,3.10,2026-10-01,Sheet A\n"
        "certificate\x00 of deposit,12 months,3.90,2026-10-01,Sheet A\n"
    )
    response = client.post("/v1/rates", files={"file": ("rates.csv", sheet.encode(), "text/csv")})
    assert response.status_code == 422, response.text
    (problem,) = response.json()["error"]["errors"]
    assert (problem["row"], problem["column"]) == (2, "product")
    assert "control character" in problem["message"]
    assert client.get("/v1/rates").json() == before


def test_feedback_text_loses_control_characters_and_a_rater_id_with_one_is_refused(
    client: TestClient,
) -> None:
    answer_id = client.post("/v1/chat", json={"message": "How do I freeze a lost card?"}).json()[
        "answer_id"
    ]
    url = f"/v1/answers/{answer_id}/feedback"
    refused = client.post(url, json={"rating": "up", "rater": {"kind": "customer", "id": "s\x001"}})
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["body", "rater", "id"]
    vote = client.post(
        url,
        json={
            "rating": "down",
            "comment": "Wrong\x00 card",
            "reasons": ["not\x00 helpful"],
            "rater": {"kind": "customer", "id": "session-1234"},
        },
    )
    assert vote.status_code == 201, vote.text
    assert (vote.json()["comment"], vote.json()["reasons"]) == ("Wrong card", ["not helpful"])


@pytest.mark.parametrize(
    "url",
    [
        "/v1/answers/a%00b",
        "/v1/documents/a%00b",
        "/v1/rates?product=cd%00",
        "/v1/documents?limit=5&x=%1b",
    ],
)
def test_a_url_holding_a_control_character_is_a_400(client: TestClient, url: str) -> None:
    response = client.get(url)
    assert response.status_code == 400, response.text
    assert "control character" in response.json()["error"]["message"]


def test_deleting_through_a_url_with_nul_is_refused_and_plain_urls_still_work(
    client: TestClient,
) -> None:
    assert client.delete("/v1/documents/card%00services").status_code == 400
    assert client.get("/v1/documents/card-services").status_code == 200
    rates = client.get("/v1/rates", params={"product": "certificate of deposit"})
    assert rates.status_code == 200 and rates.json()["rates"]


def test_an_offset_past_what_databases_accept_is_a_422(client: TestClient) -> None:
    response = client.get("/v1/documents", params={"offset": 10**20})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "offset"]
    assert client.get("/v1/documents", params={"offset": 2**31 - 1}).json()["documents"] == []
