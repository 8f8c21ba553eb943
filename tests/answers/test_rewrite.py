"""Follow-up resolution: a picked choice stands for its question."""

from __future__ import annotations

import pytest

from bot.answers.rewrite import chosen_question, rewrite_followup

OFFERED = {"15 years": "15-year fixed mortgage rate", "30 years": "30-year fixed mortgage rate"}


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("15 years", "15-year fixed mortgage rate"),
        ("  30 YEARS? ", "30-year fixed mortgage rate"),
        ("yes", None),  # two were offered: "yes" picks neither
        ("20 years", None),
        ("what about the fees?", None),
    ],
)
def test_a_label_picks_its_choice(message: str, expected: str | None) -> None:
    assert chosen_question(message, OFFERED) == expected


@pytest.mark.parametrize("message", ["yes", "Yes please!", "sure, thanks", "ok", "go ahead"])
def test_assent_picks_a_single_offer(message: str) -> None:
    assert chosen_question(message, {"7/6 ARM": "7/6 ARM rate"}) == "7/6 ARM rate"


@pytest.mark.parametrize("message", ["no", "yes but what about fees?", "not really"])
def test_other_replies_pick_nothing(message: str) -> None:
    assert chosen_question(message, {"7/6 ARM": "7/6 ARM rate"}) is None


def test_nothing_offered_picks_nothing() -> None:
    assert chosen_question("yes", {}) is None


def test_a_term_follow_up_still_rewrites_the_previous_question() -> None:
    previous = ["what's your 30 year fixed rate?"]
    assert rewrite_followup("and for 15 years?", previous) == "what's your 15 years fixed rate?"
