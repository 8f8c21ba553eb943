"""Term matching and the id/channel mapping of the custom actions (standard library only)."""

from __future__ import annotations

import pytest

from bot.rasa.actions.teller_api import channel_for, conversation_id_for
from bot.rasa.actions.terms import (
    join_terms,
    match_term,
    question_with_term,
    term_in_reply,
    term_months,
)

YEARS = ["15 years", "30 years"]
MONTHS = ["6 months", "12 months", "24 months", "60 months"]


@pytest.mark.parametrize(
    ("label", "months"),
    [("15 years", 180), ("1 year", 12), ("6 months", 6), ("30-year", 360), ("30yr", 360)],
)
def test_term_months(label: str, months: int) -> None:
    assert term_months(label) == months


def test_term_months_without_a_unit() -> None:
    assert term_months("15") is None
    assert term_months("no fixed term") is None


@pytest.mark.parametrize(
    ("text", "choices", "expected"),
    [
        ("15", YEARS, "15 years"),
        ("15 years", YEARS, "15 years"),
        ("the 30-year one", YEARS, "30 years"),
        ("thirty years please", YEARS, "30 years"),
        ("Fifteen", YEARS, "15 years"),
        ("30yr", YEARS, "30 years"),
        ("12", MONTHS, "12 months"),
        ("1 year", MONTHS, "12 months"),
        ("two years", MONTHS, "24 months"),
        ("5 years", MONTHS, "60 months"),
        ("20 years", YEARS, None),
        ("6 years", MONTHS, None),
        ("the cheap one", YEARS, None),
        ("15", [], None),
    ],
)
def test_match_term(text: str, choices: list[str], expected: str | None) -> None:
    assert match_term(text, choices) == expected


def test_a_bare_number_counts_only_in_a_short_reply() -> None:
    assert term_in_reply("30 please", YEARS) == "30 years"
    assert term_in_reply("what are the fees for 30 transfers a month?", YEARS) is None
    assert term_in_reply("I think I would like the 30 year one after all", YEARS) == "30 years"


@pytest.mark.parametrize(
    ("choices", "expected"),
    [
        (YEARS, "15 or 30 years"),
        (MONTHS, "6, 12, 24 or 60 months"),
        (["6 months", "1 year"], "6 months or 1 year"),
        (["1 year"], "1 year"),
        ([], ""),
    ],
)
def test_join_terms(choices: list[str], expected: str) -> None:
    assert join_terms(choices) == expected


def test_question_with_term() -> None:
    assert (
        question_with_term("What's your fixed mortgage rate? ", "15 years")
        == "What's your fixed mortgage rate for 15 years?"
    )


def test_conversation_ids_teller_gave_rasa_are_kept() -> None:
    assert conversation_id_for("0b9e8a6c-3f1d-4c55-9d51-9a7c0f3e2b11") == (
        "0b9e8a6c-3f1d-4c55-9d51-9a7c0f3e2b11"
    )


def test_other_sender_ids_get_a_stable_valid_conversation_id() -> None:
    first = conversation_id_for("default")
    assert first == conversation_id_for("default") != conversation_id_for("U123:slack")
    assert first.startswith("rasa-") and len(first) == 36


def test_channel_comes_from_the_metadata_or_defaults_to_api() -> None:
    assert channel_for({"channel": "web"}) == "web"
    assert channel_for({"channel": "slack"}) == "api"
    assert channel_for(None) == "api"
