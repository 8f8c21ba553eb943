"""The internal API for the action server: its token, term choices and handoffs."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy.orm import Session, sessionmaker

from bot.api.errors import install_error_handlers
from bot.api.routes import internal
from bot.dialogue import record_handoff, term_choices
from bot.rates import load_rate_sheet
from db import conversations as convo_repo
from tests.rasa.conftest import ActionsSettings, rate_sheet

TODAY = dt.date(2026, 11, 23)


def _app(token: str | None) -> FastAPI:
    app = FastAPI()
    app.state.settings = ActionsSettings(
        environment="test", actions_token=SecretStr(token) if token else None
    )
    app.state.runtime = None  # the token is checked before anything touches the runtime
    install_error_handlers(app)
    app.include_router(internal.router)
    return app


@pytest.mark.parametrize("path", ["/v1/internal/answer", "/v1/internal/handoff"])
@pytest.mark.parametrize("sent", [None, "wrong-token", ""])
def test_calls_without_the_right_token_are_refused(path: str, sent: str | None) -> None:
    headers = {} if sent is None else {"X-Teller-Actions-Token": sent}
    with TestClient(_app("the-right-token")) as client:
        response = client.post(path, json={}, headers=headers)
    assert response.status_code == 401
    assert "X-Teller-Actions-Token" in response.json()["error"]["message"]


def test_without_a_configured_token_everything_is_refused() -> None:
    with TestClient(_app(None)) as client:
        response = client.post(
            "/v1/internal/term-choices",
            json={"message": "mortgage rate?"},
            headers={"X-Teller-Actions-Token": ""},
        )
    assert response.status_code == 401
    assert "TELLER_ACTIONS_TOKEN" in response.json()["error"]["message"]


def test_the_right_token_reaches_validation() -> None:
    with TestClient(_app("the-right-token")) as client:
        response = client.post(
            "/v1/internal/answer",
            json={"message": "hi", "conversation_id": "bad id!"},
            headers={"X-Teller-Actions-Token": "the-right-token"},
        )
    assert response.status_code == 422


@pytest.fixture
def sessions(session_factory: sessionmaker[Session]) -> sessionmaker[Session]:
    with session_factory.begin() as session:
        load_rate_sheet(session, filename="rates.csv", data=rate_sheet(TODAY))
    return session_factory


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("What's your fixed mortgage rate?", ["15 years", "30 years"]),
        ("what are your CD rates?", ["6 months", "12 months", "24 months"]),
        ("What's your 30-year fixed mortgage rate?", []),  # one product, one term
        ("what's your mortgage rate?", []),  # fixed or ARM: a product choice, not a term
        ("What's the high-yield savings APY?", []),  # tiers, no term
        ("When will my card arrive?", []),  # not a rate question
    ],
)
def test_term_choices(sessions: sessionmaker[Session], question: str, expected: list[str]) -> None:
    assert term_choices(sessions, question, today=TODAY) == expected


def test_term_choices_read_a_follow_up_in_context(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        convo_repo.create_conversation(session, channel="web", conversation_id="conv-follow")
        convo_repo.add_message(
            session, conversation_id="conv-follow", role="user", text="what are your CD rates?"
        )
    assert term_choices(sessions, "and what about them?", today=TODAY) == []
    assert term_choices(
        sessions, "and what about them?", conversation_id="conv-follow", today=TODAY
    ) == ["6 months", "12 months", "24 months"]


def test_record_handoff_stores_an_answer_with_the_reference(
    sessions: sessionmaker[Session],
) -> None:
    result = record_handoff(
        sessions,
        conversation_id="conv-handoff-1",
        channel="web",
        message="I want to talk to a person",
        reason="customer asked for a person",
        text="Your reference is {reference}.",
    )
    assert result.handoff_reference == f"HO-{result.answer_id[:8].upper()}"
    assert result.text == f"Your reference is {result.handoff_reference}."
    assert result.kind == "abstain" and result.handoff_suggested
    with sessions() as session:
        stored = convo_repo.get_answer(session, answer_id=result.answer_id)
        assert stored is not None
        assert stored.conversation_id == "conv-handoff-1"
        assert stored.trace["handoff_reference"] == result.handoff_reference
        assert stored.trace["reason"] == "customer asked for a person"
        messages = convo_repo.recent_messages(session, conversation_id="conv-handoff-1")
        assert [m.role for m in messages] == ["user", "assistant"]
