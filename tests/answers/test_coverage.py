"""Question-term coverage: which words count, how they are weighed."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pytest

from bot.answers.coverage import CoverageCheck, coverage, evidence_terms, question_terms


def test_question_terms_drop_function_words_and_stem() -> None:
    assert question_terms("How do I reset my online banking password?") == [
        "reset",
        "onlin",
        "bank",
        "password",
    ]
    # Words a general stop list drops but a bank's customers ask about are kept.
    assert question_terms("How much interest is due on the bill?") == ["interest", "due", "bill"]
    assert question_terms("Can I top up with 5% down?") == ["top", "up", "5", "down"]
    assert question_terms("Does it?") == []
    assert question_terms("Rates, rates and RATES") == ["rate"]


def test_contractions_and_words_of_asking_are_not_content() -> None:
    assert question_terms("My card hasn't arrived yet, when will it come?") == ["card", "arriv"]
    assert question_terms("I can\u2019t log in, what's wrong with the bank's app?") == [
        "log",
        "wrong",
        "bank",
        "app",
    ]
    assert question_terms("What happens when my CD matures?") == ["cd", "matur"]


def test_evidence_terms_are_analysed_the_same_way() -> None:
    evidence = evidence_terms(["Resetting passwords [1]", "Online Banking › Security"])
    assert {"reset", "password", "onlin", "bank", "secur"} <= evidence
    assert "1" not in evidence  # a citation marker, not a figure


def test_coverage_weighs_rare_terms_more() -> None:
    terms = ["safe", "deposit", "box"]
    frequencies = {"deposit": 40, "safe": 1}  # "box" is in no chunk
    documents = 100
    only_common = coverage(terms, {"deposit"}, frequencies, documents)
    idf = {
        "safe": math.log(101 / 1.5),
        "deposit": math.log(101 / 40.5),
        "box": math.log(101 / 0.5),
    }
    assert only_common.value == pytest.approx(idf["deposit"] / sum(idf.values()))
    assert only_common.missing == ("box", "safe")  # rarest first
    assert coverage(terms, {"safe", "box"}, frequencies, documents).value > 0.8
    assert coverage(terms, set(terms), frequencies, documents).value == 1.0


def test_a_term_in_every_chunk_still_counts_a_little() -> None:
    result = coverage(["bank", "zelle"], {"bank"}, {"bank": 100}, 100)
    assert 0.0 < result.value < 0.05 and result.missing == ("zelle",)


def test_a_question_without_content_words_is_fully_covered() -> None:
    assert coverage([], set(), {}, 10).value == 1.0


def test_a_check_counts_frequencies_once_and_only_when_it_applies() -> None:
    calls: list[list[str]] = []

    def count(terms: Sequence[str]) -> tuple[int, dict[str, int]]:
        calls.append(list(terms))
        return 100, {"deposit": 40}

    check = CoverageCheck("Can I rent a safe deposit box?", minimum=0.25, below=0.45, count=count)
    close = check.of(["A certificate of deposit pays a fixed rate."], [], cosine=0.6)
    assert not close.checked and not check.fails(close) and calls == []
    weak = check.of(["A certificate of deposit pays a fixed rate."], ["Certificates"], cosine=0.4)
    again = check.of(["Rent a safe deposit box at any branch."], [], cosine=0.4)
    assert calls == [["rent", "safe", "deposit", "box"]]
    assert check.fails(weak) and not check.fails(again)
    assert check.trace(weak) == {
        "value": round(weak.value, 4),
        "missing": ["rent", "safe", "box"],  # in no chunk, equally rare: question order
        "min": 0.25,
        "checked": True,
        "below": 0.45,
        "strict": 0.0,
        "strict_below": 0.0,
    }
    off = CoverageCheck("Can I rent a safe deposit box?", minimum=0.0, below=0.45, count=count)
    assert not off.of([], [], cosine=0.1).checked


def test_weaker_meaning_asks_more_of_the_words() -> None:
    # "lost" is there, "phone" is not: half the question, enough near the cosine limit,
    # not where the passage is further away in meaning.
    check = CoverageCheck(
        "What should I do if I lost my phone?",
        minimum=0.25,
        below=0.45,
        strict=0.5,
        strict_below=0.40,
        count=lambda terms: (100, {"lost": 5}),
    )
    shown = ["Freeze your card right away if it was lost or stolen."]
    near, far = check.of(shown, [], cosine=0.42), check.of(shown, [], cosine=0.38)
    assert near.value == far.value and 0.25 < far.value < 0.5
    assert not check.fails(near) and check.fails(far)
    assert check.trace(near)["min"] == 0.25 and check.trace(far)["min"] == 0.5
    assert not check.of(shown, [], cosine=0.45).checked
    assert check.required(0.3) == 0.5 and check.required(0.44) == 0.25
    assert check.required(0.5) == 0.0
    off = CoverageCheck(
        "What should I do if I lost my phone?",
        minimum=0.0,
        below=0.45,
        strict=0.5,
        strict_below=0.40,
        count=lambda terms: (100, {}),
    )
    assert not off.of(shown, [], cosine=0.3).checked  # min_coverage 0 turns both off
