"""The feedback reranker inside the running product: votes sent over HTTP change what
`/v1/search` and `/v1/chat` return for similar questions, the reranker version lands in
answer traces, and configuration switches it off (real model, index, SQLite and
PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from fastapi.testclient import TestClient

from bot.app import create_app
from bot.runtime import Runtime
from feedback.rerank_math import RerankConfig
from tests.demo import demo_runtime

ASKED = "How do I freeze a lost debit card?"
SIMILAR = "How can I freeze my lost debit card?"


@pytest.fixture
def runtime(make_settings: Any, database_url: str) -> Iterator[Runtime]:
    # A large weight so that a handful of votes decides the order in this small corpus.
    with demo_runtime(make_settings(database_url=database_url, feedback_weight=1.0)) as rt:
        yield rt


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime.settings, runtime=runtime)) as test_client:
        yield test_client


def _search(client: TestClient, query: str) -> dict[str, Any]:
    response = client.post("/v1/search", json={"query": query, "k": 5})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _down_votes(client: TestClient, raters: int) -> str:
    """`raters` customers ask ASKED and vote its answer down; returns the cited doc."""
    cited = set()
    for number in range(raters):
        answer = client.post("/v1/chat", json={"message": ASKED, "channel": "web"}).json()
        cited.add(answer["citations"][0]["doc_id"])
        vote = {"rating": "down", "rater": {"kind": "customer", "id": f"widget-{number}"}}
        response = client.post(f"/v1/answers/{answer['answer_id']}/feedback", json=vote)
        assert response.status_code == 201, response.text
    assert len(cited) == 1
    return cited.pop()


def test_down_votes_move_a_document_down_for_similar_questions(
    client: TestClient, runtime: Runtime
) -> None:
    before = _search(client, SIMILAR)
    assert before["reranker_version"] == runtime.reranker.version
    doc = _down_votes(client, raters=4)
    assert before["hits"][0]["doc_id"] == doc

    after = _search(client, SIMILAR)
    # Four agreeing votes: smoothed delta -4 / (4 + prior 2); score - weight 1.0 * 2/3.
    best_after = max(h["score"] for h in after["hits"] if h["doc_id"] == doc)
    assert best_after == pytest.approx(before["hits"][0]["score"] - 2 / 3)
    other = next(h["doc_id"] for h in before["hits"] if h["doc_id"] != doc)
    before_ranks = [h["doc_id"] for h in before["hits"]]
    after_ranks = [h["doc_id"] for h in after["hits"]]
    assert after_ranks.index(other) < before_ranks.index(other)
    assert after_ranks.count(doc) < before_ranks.count(doc)
    # A question about something else is not touched by these votes.
    other = "What is the fee for an outgoing international wire transfer?"
    runtime.reranker.config = replace(runtime.reranker.config, enabled=False)
    plain = _search(client, other)
    assert plain["reranker_version"] is None
    runtime.reranker.config = replace(runtime.reranker.config, enabled=True)
    assert [h["chunk_id"] for h in _search(client, other)["hits"]] == [
        h["chunk_id"] for h in plain["hits"]
    ]


def test_the_answer_trace_records_the_reranker_version(
    client: TestClient, runtime: Runtime
) -> None:
    answer = client.post("/v1/chat", json={"message": ASKED, "channel": "web"}).json()
    stored = client.get(f"/v1/answers/{answer['answer_id']}").json()
    assert stored["reranker_version"] == runtime.reranker.version
    assert stored["reranker_version"].startswith("fb-1:")


def test_configuration_switches_reranking_off(make_settings: Any) -> None:
    settings = make_settings(feedback_rerank=False, feedback_rerank_version="off")
    config = RerankConfig.from_settings(settings)
    assert config.enabled is False and config.adapter == "off"
    with (
        demo_runtime(settings) as runtime,
        TestClient(create_app(runtime.settings, runtime=runtime)) as client,
    ):
        _down_votes(client, raters=4)
        body = _search(client, SIMILAR)
        assert body["reranker_version"] is None
        answer = client.post("/v1/chat", json={"message": ASKED, "channel": "web"}).json()
        stored = client.get(f"/v1/answers/{answer['answer_id']}").json()
        assert stored["reranker_version"] is None
        # Votes are still stored; only their effect on ranking is off.
        assert body["hits"][0]["doc_id"] == answer["citations"][0]["doc_id"]


def test_reranker_state_and_training_inside_the_server(make_settings: Any) -> None:
    with (
        demo_runtime(make_settings(admin_token="s3cret")) as runtime,
        TestClient(create_app(runtime.settings, runtime=runtime)) as client,
    ):
        state = client.get("/v1/reranker").json()
        assert state["enabled"] is True and state["version"] == runtime.reranker.version
        assert state["adapter"] is None and state["adapters"] == []
        assert client.post("/v1/reranker/train").status_code == 401
        _down_votes(client, raters=2)
        headers = {"Authorization": "Bearer s3cret"}
        report = client.post("/v1/reranker/train", headers=headers)
        assert report.status_code == 200, report.text
        # Two down votes name no approved passage: nothing to learn from yet.
        assert report.json()["version"] is None and "fewer than" in report.json()["reason"]
