"""`GET/POST /v1/rates` on real SQLite and PostgreSQL databases."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from types import SimpleNamespace

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from bot.api.errors import install_error_handlers
from bot.api.routes import rates
from bot.settings import Settings
from tests.rates.helpers import DEMO_SHEET

TOKEN = "s3cret-rates-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
DEMO = DEMO_SHEET.read_bytes()
DEMO_ROWS = DEMO.count(b"\n") - 1
BAD = b"""product,rate_percent,effective_from,source
savings,0.50,2026-01-01,sheet
cd,four,2026-01-01,sheet
cd,4.1,2026-31-01,sheet
"""


def build_app(settings: Settings, sessions: sessionmaker[Session]) -> FastAPI:
    app = FastAPI()
    app.state.settings = settings
    app.state.runtime = SimpleNamespace(sessions=sessions)  # API keys are looked up there
    install_error_handlers(app)
    app.include_router(rates.router)
    app.dependency_overrides[rates.get_sessions] = lambda: sessions
    return app


@pytest.fixture
def client(
    make_settings: Callable[..., Settings], session_factory: sessionmaker[Session]
) -> Iterator[TestClient]:
    app = build_app(make_settings(admin_token=TOKEN, max_upload_bytes=64 * 1024), session_factory)
    with TestClient(app) as test_client:
        yield test_client


def upload(client: TestClient, data: bytes = DEMO, name: str = "rates.csv") -> dict[str, object]:
    response = client.post("/v1/rates", files={"file": (name, data, "text/csv")}, headers=AUTH)
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


def test_upload_then_list_current_rates(client: TestClient) -> None:
    body = upload(client)
    assert body["rows"] == DEMO_ROWS and body["superseded"] == 0 and body["unchanged"] is False
    assert body["filename"] == "rates.csv" and len(str(body["sheet_id"])) == 36

    listed = client.get("/v1/rates", params={"on": "2026-11-23"}).json()
    assert listed["on"] == "2026-11-23" and listed["history"] is False
    assert {r["status"] for r in listed["rates"]} == {"current"}
    fixed30 = [r for r in listed["rates"] if r["product"] == "30-year fixed mortgage"]
    assert [(r["rate_percent"], r["apr_percent"]) for r in fixed30] == [("6.125", "6.291")]
    assert "7.990" not in json.dumps(listed)  # the 2027 HELOC row is not in force yet
    assert "6.375" not in json.dumps(listed)  # the September mortgage row expired

    one = client.get("/v1/rates", params={"on": "2026-11-23", "product": "Certificate of Deposit"})
    assert [r["term"] for r in one.json()["rates"]] == [
        "6 months",
        "12 months",
        "24 months",
        "60 months",
    ]
    later = client.get(
        "/v1/rates", params={"on": "2027-01-01", "product": "home equity line of credit"}
    )
    assert [r["rate_percent"] for r in later.json()["rates"]] == ["7.990"]
    assert client.get("/v1/rates").json()["on"] == dt.date.today().isoformat()


def test_reupload_supersedes_and_history_shows_every_row(client: TestClient) -> None:
    first = upload(client)
    changed = DEMO.replace(b",6.125,6.291,", b",6.000,6.170,")
    raw = client.post("/v1/rates", content=changed, headers={**AUTH, "Content-Type": "text/csv"})
    assert raw.status_code == 201
    second = raw.json()
    assert second["superseded"] == DEMO_ROWS and second["unchanged"] is False
    assert second["filename"] == "upload.csv"

    history = client.get("/v1/rates", params={"history": "true", "on": "2026-11-23"}).json()
    rows = history["rates"]
    assert len(rows) == 2 * DEMO_ROWS
    old = [r for r in rows if r["sheet_id"] == first["sheet_id"]]
    assert {r["status"] for r in old} == {"superseded"}
    assert {r["superseded_by_sheet"] for r in old} == {second["sheet_id"]}
    new = {r["status"] for r in rows if r["sheet_id"] == second["sheet_id"]}
    assert new == {"current", "expired", "future"}
    fixed30 = client.get(
        "/v1/rates", params={"on": "2026-11-23", "product": "30-year fixed mortgage"}
    ).json()["rates"]
    assert [r["rate_percent"] for r in fixed30] == ["6.000"]


def test_the_same_sheet_again_stores_nothing_and_answers_200(client: TestClient) -> None:
    first = upload(client)
    assert first["unchanged"] is False
    # A retried upload under another name, as a raw body: every row is already in force.
    again = client.post("/v1/rates", content=DEMO, headers={**AUTH, "Content-Type": "text/csv"})
    assert again.status_code == 200, again.text
    assert again.json() == {
        "sheet_id": first["sheet_id"],
        "filename": "upload.csv",
        "rows": DEMO_ROWS,
        "superseded": 0,
        "unchanged": True,
    }
    history = client.get("/v1/rates", params={"history": "true", "on": "2026-11-23"}).json()
    assert len(history["rates"]) == DEMO_ROWS
    assert "superseded" not in {r["status"] for r in history["rates"]}


def test_json_body_upload(client: TestClient) -> None:
    sheet = {
        "rates": [
            {
                "product": "Auto loan",
                "term": "60 months",
                "rate_percent": "5.49",
                "apr_percent": "5.49",
                "effective_from": "2026-11-01",
                "source": "Harbor Bank rate sheet 2026-11",
            }
        ]
    }
    response = client.post("/v1/rates", json=sheet, headers=AUTH)
    assert response.status_code == 201, response.text
    listed = client.get("/v1/rates", params={"on": "2026-11-23", "product": "auto loan"}).json()
    assert [(r["term_months"], r["rate_percent"]) for r in listed["rates"]] == [(60, "5.49")]


def test_bad_sheet_is_422_with_row_errors_and_writes_nothing(client: TestClient) -> None:
    response = client.post("/v1/rates", files={"file": ("bad.csv", BAD)}, headers=AUTH)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["type"] == "RateSheetError"
    assert error["message"].startswith("bad.csv: row 2 (line 3): rate_percent 'four'")
    assert "nothing was loaded" in error["message"]
    assert [(e["row"], e["line"], e["column"]) for e in error["errors"]] == [
        (2, 3, "rate_percent"),
        (3, 4, "effective_from"),
    ]
    history = client.get("/v1/rates", params={"history": "true"}).json()
    assert history["rates"] == []


def test_writes_need_the_admin_token(client: TestClient) -> None:
    files = {"file": ("rates.csv", DEMO)}
    assert client.post("/v1/rates", files=files).status_code == 401
    wrong = client.post("/v1/rates", files=files, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert wrong.headers["WWW-Authenticate"] == "Bearer"
    assert client.get("/v1/rates", params={"history": "true"}).json()["rates"] == []
    assert client.get("/v1/rates").status_code == 200  # reading needs no token


def test_upload_errors(client: TestClient) -> None:
    no_file = client.post("/v1/rates", files={"other": ("x.csv", DEMO)}, headers=AUTH)
    assert no_file.status_code == 400 and "`file`" in no_file.json()["error"]["message"]
    xml = client.post("/v1/rates", content=b"<x/>", headers={**AUTH, "Content-Type": "text/xml"})
    assert xml.status_code == 415 and "text/csv" in xml.json()["error"]["message"]
    huge = DEMO * 200
    too_big = client.post("/v1/rates", files={"file": ("big.csv", huge)}, headers=AUTH)
    assert too_big.status_code == 413
    assert client.get("/v1/rates", params={"on": "yesterday"}).status_code == 422
