"""The HTTP API against a real runtime (SQLite or PostgreSQL, embedded index, real model)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from bot.app import create_app
from bot.runtime import build_runtime
from bot.settings import Settings

FIXTURES = Path(__file__).parent.parent / "retrieval" / "fixtures"


@pytest.fixture
def client(make_settings: Callable[..., Settings], database_url: str) -> Iterator[TestClient]:
    settings = make_settings(database_url=database_url, max_upload_bytes=4096)
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def _ingest_json(client: TestClient, *docs: dict[str, object]) -> dict[str, object]:
    response = client.post("/v1/documents", json={"documents": list(docs)})
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"]["database"] == "ok"
    assert "/v1/search" in client.get("/openapi.json").json()["paths"]
    assert client.get("/docs").status_code == 200


def test_documents_round_trip_and_search(client: TestClient) -> None:
    body = _ingest_json(
        client,
        {
            "id": "wires",
            "title": "Wire fees",
            "text": "International wires cost $45.",
            "metadata": {"product": "Checking", "doc_type": "fee schedule"},
        },
    )
    assert body["results"][0]["status"] == "created"  # type: ignore[index]
    doc = client.get("/v1/documents/wires").json()
    assert doc["metadata"] == {"product": "checking", "document_type": "fee schedule"}
    assert doc["version"] == 1 and doc["chunks"] == 1

    hits = client.post("/v1/search", json={"query": "international wire fee", "k": 3}).json()[
        "hits"
    ]
    top = hits[0]
    assert top["doc_id"] == "wires" and top["title"] == "Wire fees" and top["rank"] == 1
    assert top["bm25_score"] > 0 and top["dense_score"] > 0 and top["score"] > 0

    # A change is visible to the very next query.
    _ingest_json(
        client, {"id": "wires", "title": "Wire fees", "text": "International wires cost $50."}
    )
    hits = client.post("/v1/search", json={"query": "international wire fee"}).json()["hits"]
    assert [h["text"] for h in hits if h["doc_id"] == "wires"] == ["International wires cost $50."]

    assert client.delete("/v1/documents/wires").status_code == 204
    assert client.get("/v1/documents/wires").status_code == 404
    missing = client.delete("/v1/documents/wires")
    assert missing.status_code == 404
    assert "no document with id 'wires'" in missing.json()["error"]["message"]


def test_multipart_batch_reports_each_file(client: TestClient) -> None:
    files = [
        ("files", ("fees.md", b"# Fees\n\nPaper statements cost $2 per month.", "text/markdown")),
        ("files", ("notes.docx", b"PK\x03\x04", "application/octet-stream")),
        ("files", ("broken.jsonl", b'{"id": "a", "text": "ok"}\n{"id": "b", "text": ', None)),
    ]
    response = client.post("/v1/documents", files=files)
    assert response.status_code == 207
    results = {r["source"]: r for r in response.json()["results"]}
    assert results["fees.md"]["status"] == "created"
    assert results["notes.docx"]["error_type"] == "UnsupportedFormatError"
    assert ".pdf" in results["notes.docx"]["error"]  # names what is supported
    assert results["broken.jsonl"]["status"] == "failed"
    assert "line 2" in results["broken.jsonl"]["error"]


@pytest.mark.parametrize(
    ("name", "data", "status", "needle"),
    [
        ("a.docx", b"PK", 415, "supported"),
        ("big.txt", b"x " * 5000, 413, "MB"),
        ("empty.txt", b"  \n ", 422, "empty"),
        ("bad.pdf", b"%PDF-1.7\n1 0 obj\n<<", 422, "PDF"),
        ("bad.json", b"{not json", 422, "JSON"),
    ],
)
def test_bad_uploads_get_clear_errors(
    client: TestClient, name: str, data: bytes, status: int, needle: str
) -> None:
    response = client.post("/v1/documents", files=[("files", (name, data, None))])
    assert response.status_code == status, response.text
    assert needle.lower() in response.json()["results"][0]["error"].lower()


def test_invalid_json_bodies_name_the_problem(client: TestClient) -> None:
    bad = client.post(
        "/v1/documents", content=b"{oops", headers={"content-type": "application/json"}
    )
    assert bad.status_code == 400 and "not valid JSON" in bad.json()["error"]["message"]
    missing = client.post("/v1/documents", json={"documents": [{"title": "no text"}]})
    assert missing.status_code == 400 and "documents.0.text" in missing.json()["error"]["message"]
    dates = client.post(
        "/v1/documents",
        json={"documents": [{"id": "r", "text": "x", "metadata": {"effective_from": "soon"}}]},
    )
    assert dates.status_code == 422 and "effective_from" in dates.json()["results"][0]["error"]
    search = client.post("/v1/search", json={"query": "", "k": 0})
    assert search.status_code == 422
    nothing = client.post("/v1/documents", files={})  # no body, no content type
    assert nothing.status_code == 415
    assert "send application/json" in nothing.json()["error"]["message"]
    not_json = client.post(
        "/v1/documents", content=b'{"documents": []}', headers={"content-type": "text/csv"}
    )
    assert not_json.status_code == 415 and "'text/csv'" in not_json.json()["error"]["message"]
    utf16 = client.post(
        "/v1/documents",
        content='{"documents": [{"text": "hi"}]}'.encode("utf-16"),
        headers={"content-type": "application/json"},
    )
    assert utf16.status_code == 400 and "not UTF-8" in utf16.json()["error"]["message"]
    garbage = client.post(
        "/v1/documents", content=b"\x00" * 13, headers={"content-type": "application/json"}
    )
    assert garbage.status_code == 400  # was a 500: json.loads guessed UTF-32 and failed


def test_admin_token_protects_writes(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(admin_token="s3cret-token")
    with TestClient(create_app(settings)) as client:
        doc = {"documents": [{"id": "a", "text": "hello"}]}
        assert client.post("/v1/documents", json=doc).status_code == 401
        wrong = client.post("/v1/documents", json=doc, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        ok = client.post(
            "/v1/documents", json=doc, headers={"Authorization": "Bearer s3cret-token"}
        )
        assert ok.status_code == 200
        assert client.post("/v1/search", json={"query": "hello"}).status_code == 200


def test_restart_keeps_documents_without_reembedding(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings()
    with TestClient(create_app(settings)) as client:
        _ingest_json(client, {"id": "atm", "text": "Out-of-network ATM withdrawals cost $3."})
    runtime = build_runtime(settings)
    try:
        assert runtime.index.count() == 1
        hits = client_search(runtime, "ATM withdrawal fee")
        assert hits == ["atm"]
    finally:
        runtime.close()


def client_search(runtime: object, query: str) -> list[str]:
    from retrieval.types import SearchRequest

    result = runtime.knowledge.search(SearchRequest(query=query, k=3))  # type: ignore[attr-defined]
    return [h.doc_id for h in result.hits]


def test_production_refuses_to_start_without_admin_token(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="TELLER_ADMIN_TOKEN"):
        Settings(environment="production", data_dir=tmp_path)
