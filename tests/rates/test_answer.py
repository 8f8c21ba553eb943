"""Answering rate questions: exact quotes, "as of", options, and never an expired rate."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest

from bot.rates.answer import answer_rate_question, current_rows, render_row
from bot.rates.matcher import detect_rate_question
from bot.rates.types import RateAnswer, RateQuery
from tests.rates.helpers import DEMO_TODAY, Row, demo_rows, row

DEMO = demo_rows()
PRODUCTS = sorted({r.product for r in DEMO})


def ask(text: str, rows: list[Row] = DEMO, today: dt.date = DEMO_TODAY) -> RateAnswer:
    query = detect_rate_question(text, products={r.product for r in rows})
    assert query is not None, text
    return answer_rate_question(query, rows, today=today)


def percents(text: str) -> set[str]:
    return set(re.findall(r"(\d+(?:\.\d+)?)%", text))


def test_quotes_the_current_row_exactly_with_as_of_and_source() -> None:
    answer = ask("what's your 30 year fixed rate?")
    assert answer.kind == "quoted"
    assert answer.text == (
        "Our 30-year fixed mortgage rate is 6.125% (APR 6.291%), as of 2026-11-01. "
        "Source: Harbor Bank rate sheet 2026-11."
    )
    (quote,) = answer.quotes
    assert (quote.rate_percent, quote.apr_percent) == ("6.125", "6.291")
    assert answer.row_ids == [2]
    assert answer.as_of == dt.date(2026, 11, 1)
    assert answer.clarify is None and answer.choices == ()
    (source,) = answer.sources
    assert source.text == render_row(DEMO[1])
    assert "6.125%" in source.text and "6.291%" in source.text and "2026-11-01" in source.text
    assert source.title == "Harbor Bank rate sheet 2026-11: 30-year fixed mortgage"


def test_trailing_zeros_are_kept() -> None:
    answer = ask("everyday savings APY")
    assert answer.text == (
        "Our everyday savings APY is 0.50% (interest rate 0.50%), as of 2026-01-15. "
        "Source: Harbor Bank rate sheet 2026-01."
    )


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("CD rates for 12 months", "Our 12-month certificate of deposit rate is 3.90% (APY 3.97%)"),
        (
            "how much interest does a 6 month cd pay",
            "Our 6-month certificate of deposit rate is 4.10% (APY 4.18%), as of 2026-10-15.",
        ),
        ("What is the APR on the 15-year mortgage?", "15-year fixed mortgage APR is 5.702% (rate"),
        ("7/6 ARM rate", "Our 30-year 7/6 ARM mortgage rate is 5.875% (APR 6.634%)"),
        ("HELOC rate", "Our home equity line of credit rate is 8.250% (APR 8.250%)"),
    ],
)
def test_quoted_answers(question: str, expected: str) -> None:
    answer = ask(question)
    assert answer.kind == "quoted"
    assert expected in answer.text


def _numbers(rows: list[Row]) -> set[str]:
    return {n for r in rows for n in (r.rate_percent, r.apr_percent, r.apy_percent) if n}


def test_expired_and_future_rows_are_never_quoted() -> None:
    expired = [r for r in DEMO if r.effective_until and r.effective_until < DEMO_TODAY]
    future = [r for r in DEMO if r.effective_from > DEMO_TODAY]
    assert expired and future
    stale = _numbers(expired + future) - _numbers(current_rows(DEMO, today=DEMO_TODAY))
    assert {"6.375", "5.750", "4.35", "7.990"} <= stale
    questions = [
        "what are your rates?",
        "current mortgage rates",
        "CD rates",
        "12 month cd rate",
        "high-yield savings rate",
        "HELOC rate",
        "30 year fixed rate",
        "15 year fixed rate",
    ]
    for question in questions:
        answer = ask(question)
        assert not {q.row_id for q in answer.quotes} & {r.id for r in expired + future}
        assert not percents(answer.text) & stale, question


def test_no_fallback_to_an_expired_row() -> None:
    rows = [row(1, "auto loan", "5.99", start=dt.date(2026, 1, 1), until=dt.date(2026, 10, 31))]
    answer = ask("auto loan rate", rows)
    assert answer.kind == "none"
    assert answer.text == "We don't have a current rate for an auto loan, so I can't quote one."
    assert answer.quotes == () and answer.sources == () and answer.row_ids == []
    assert not percents(answer.text)


def test_a_future_row_is_not_quoted_before_it_starts() -> None:
    rows = [row(1, "auto loan", "5.49", start=dt.date(2027, 1, 1))]
    assert ask("auto loan rate", rows).kind == "none"
    assert ask("auto loan rate", rows, today=dt.date(2027, 1, 1)).kind == "quoted"


def test_superseded_rows_are_skipped() -> None:
    rows = [
        row(1, "auto loan", "5.49", superseded=True),
        row(2, "auto loan", "5.59"),
    ]
    answer = ask("auto loan rate", rows)
    assert answer.row_ids == [2] and "5.59%" in answer.text


def test_the_latest_effective_date_wins() -> None:
    rows = [
        row(1, "auto loan", "5.49", start=dt.date(2026, 1, 1)),
        row(2, "auto loan", "5.29", start=dt.date(2026, 9, 1)),
        row(3, "auto loan", "4.99", start=dt.date(2026, 12, 1)),
    ]
    assert [r.id for r in current_rows(rows, today=DEMO_TODAY)] == [2]
    assert "5.29%" in ask("auto loan rate", rows).text
    assert "4.99%" in ask("auto loan rate", rows, today=dt.date(2026, 12, 1)).text


def test_tiers_of_one_product_are_quoted_together() -> None:
    answer = ask("high-yield savings rate")
    assert answer.kind == "quoted"
    assert answer.text == (
        "Our high-yield savings rates, as of 2026-11-01: under $10,000: 3.92% (APY 4.00%); "
        "$10,000 and above: 4.16% (APY 4.25%). Source: Harbor Bank rate sheet 2026-11."
    )
    assert answer.row_ids == [11, 12]


def test_ambiguous_term_asks_which_term() -> None:
    rows = [
        row(1, "fixed mortgage", "6.125", term="30 years", term_months=360, apr="6.291"),
        row(2, "fixed mortgage", "5.500", term="15 years", term_months=180, apr="5.702"),
    ]
    answer = ask("fixed mortgage rates", rows)
    assert answer.kind == "options"
    assert answer.clarify == "Which term are you interested in: 15 or 30 years?"
    assert answer.text.endswith(answer.clarify)
    assert "- 15-year fixed mortgage: 5.500% (APR 5.702%), as of 2026-11-01" in answer.text
    assert "- 30-year fixed mortgage: 6.125% (APR 6.291%), as of 2026-11-01" in answer.text
    assert [(c.label, c.term_months) for c in answer.choices] == [
        ("15 years", 180),
        ("30 years", 360),
    ]
    assert answer.row_ids == [2, 1]
    # Products whose names differ only by the term get the same question.
    demo = ask("fixed mortgage rates")
    assert demo.clarify == "Which term are you interested in: 15 or 30 years?"
    assert [c.product for c in demo.choices] == ["15-year fixed mortgage", "30-year fixed mortgage"]


def test_ambiguous_product_lists_options_with_numbers() -> None:
    answer = ask("current mortgage rates")
    assert answer.kind == "options"
    assert answer.text.splitlines() == [
        "Here are our current mortgage rates:",
        "- 15-year fixed mortgage: 5.500% (APR 5.702%), as of 2026-11-01",
        "- 30-year fixed mortgage: 6.125% (APR 6.291%), as of 2026-11-01",
        "- 30-year 7/6 ARM mortgage: 5.875% (APR 6.634%), as of 2026-11-01",
        "Source: Harbor Bank rate sheet 2026-11.",
        "Which one are you interested in: 15-year fixed mortgage, 30-year fixed mortgage or "
        "30-year 7/6 ARM mortgage?",
    ]
    cd = ask("CD rates")
    assert cd.clarify == "Which term are you interested in: 6, 12, 24 or 60 months?"


@pytest.mark.parametrize(
    "question",
    [
        "what are your rates?",
        "current mortgage rates",
        "fixed mortgage rates",
        "CD rates",
        "savings APY",
    ],
)
def test_every_choice_leads_to_one_quote(question: str) -> None:
    answer = ask(question)
    assert answer.kind == "options" and answer.choices
    for choice in answer.choices:
        picked = ask(choice.query)
        assert picked.kind == "quoted", choice.query
        assert {q.product for q in picked.quotes} == {choice.product}
        assert {q.term for q in picked.quotes} == {choice.term}


def test_too_many_options_are_named_without_numbers() -> None:
    answer = ask("what are your rates?")
    assert answer.kind == "options"
    assert answer.text.startswith("We have current rates for several products. Which one")
    assert not percents(answer.text)
    assert len(answer.choices) == 10


def test_missing_term_says_so_and_offers_the_terms_that_exist() -> None:
    answer = ask("18 month cd rate")
    assert answer.kind == "none"
    assert answer.text == (
        "We don't have a current rate for an 18-month certificate of deposit, so I can't "
        "quote one. Which term are you interested in: 6, 12, 24 or 60 months?"
    )
    assert answer.quotes == () and answer.row_ids == []
    assert [c.term_months for c in answer.choices] == [6, 12, 24, 60]
    # The offered terms are cited from their rows, which are not quoted.
    assert [s.row_id for s in answer.sources] == [13, 15, 16, 17]
    assert not percents(answer.text)


@pytest.mark.parametrize(
    ("question", "asked_for"),
    [
        ("8 year cd rate", "an 8-year certificate of deposit"),
        ("11 month cd rate", "an 11-month certificate of deposit"),
        ("7 year fixed mortgage rate", "a 7-year fixed mortgage"),
        ("What is the 20 year mortgage rate?", "a 20-year mortgage"),
        ("heloc 10 year rate", "a 10-year home equity line of credit"),
    ],
)
def test_what_we_do_not_have_is_named_as_asked(question: str, asked_for: str) -> None:
    answer = ask(question)
    assert answer.kind == "none"
    assert answer.text.startswith(f"We don't have a current rate for {asked_for}, so I can't")


def test_a_single_alternative_is_offered_by_name() -> None:
    answer = ask("heloc 10 year rate")
    assert answer.text.endswith("We do have a current rate for our home equity line of credit.")
    assert [c.query for c in answer.choices] == ["home equity line of credit rate"]


@pytest.mark.parametrize("question", ["What is the rate for a 5/1 ARM?", "5 / 1 arm rates"])
def test_an_arm_we_do_not_offer_is_not_quoted_with_another_arms_rate(question: str) -> None:
    answer = ask(question)
    assert answer.kind == "none" and answer.quotes == ()
    assert answer.text.startswith("We don't have a current rate for a 5/1 ARM, so I can't quote")
    assert not percents(answer.text)
    assert [c.label for c in answer.choices] == ["30-year 7/6 ARM mortgage"]
    assert answer.text.endswith("We do have a current rate for our 30-year 7/6 ARM mortgage.")
    assert ask("What is the rate for a 7/6 ARM?").kind == "quoted"


@pytest.mark.parametrize(
    ("question", "note"),
    [
        ("What was the 30 year fixed rate last year?", "past"),
        ("30 year fixed rate 2 years ago", "past"),
        ("historical 30 year fixed mortgage rates", "past"),
        ("what was the 30 year fixed rate in 2024", "past"),
        ("what will the 30 year fixed rate be next month?", "future"),
        ("30 year fixed rate forecast", "future"),
        ("30 year fixed rate in 2027", "future"),
        ("30 year fixed rate in 2026", None),
    ],
)
def test_another_time_than_today_gets_todays_rate_and_says_so(
    question: str, note: str | None
) -> None:
    answer = ask(question)
    assert answer.kind == "quoted"
    assert [q.row_id for q in answer.quotes] == [2]  # today's 30-year fixed row, only
    notes = {
        "past": "I can only quote today's rates; I don't have past rates to give. Our 30-year",
        "future": "I can only quote today's rates and can't say what future rates will be. Our",
        None: "Our 30-year",
    }
    assert answer.text.startswith(notes[note])


def test_a_time_ago_is_not_a_term() -> None:
    answer = ask("what was the cd rate 2 years ago?")
    assert answer.query.term_months is None and answer.query.period == "2 years ago"
    assert answer.kind == "options"  # all CD terms, not the 24-month one
    assert answer.text.startswith("I can only quote today's rates; I don't have past")


def test_a_loan_we_do_not_offer_is_not_quoted_with_another_loan() -> None:
    rows = [*DEMO, row(90, "auto loan", "5.99")]
    answer = ask("What's the rate on a boat loan?", rows)
    assert answer.kind == "none" and answer.quotes == () and answer.choices == ()
    assert answer.text == "We don't have a current rate for a boat loan, so I can't quote one."
    quoted = ask("What's the rate on a boat loan?", [*rows, row(91, "boat loan", "7.25")])
    assert quoted.kind == "quoted" and [q.row_id for q in quoted.quotes] == [91]


def test_unknown_product_is_none() -> None:
    answer = ask("auto loan rates")
    assert answer.kind == "none"
    assert answer.choices == () and answer.clarify is None


def test_empty_table_is_none() -> None:
    query = RateQuery(text="what are your rates?")
    assert answer_rate_question(query, [], today=DEMO_TODAY).kind == "none"


def test_to_dict_is_json_ready() -> None:
    body = json.loads(json.dumps(ask("CD rates").to_dict()))
    assert body["kind"] == "options"
    assert body["row_ids"] == [13, 15, 16, 17]
    assert body["as_of"] == "2026-10-15"
    assert body["quotes"][0] == {
        "row_id": 13,
        "product": "certificate of deposit",
        "term": "6 months",
        "term_months": 6,
        "tier": None,
        "rate_percent": "4.10",
        "apr_percent": None,
        "apy_percent": "4.18",
        "effective_from": "2026-10-15",
        "effective_until": None,
        "source": "Harbor Bank rate sheet 2026-10",
    }
    assert set(body["sources"][0]) == {"row_id", "title", "text", "source"}
    assert body["choices"][0] == {
        "label": "6 months",
        "product": "certificate of deposit",
        "term": "6 months",
        "term_months": 6,
        "query": "6-month certificate of deposit rate",
    }
    assert body["clarify"].startswith("Which term")
    assert body["query"]["product_hint"] == "cd"


@pytest.mark.parametrize(
    "question",
    [
        "what's your 30 year fixed rate?",
        "CD rates for 12 months",
        "savings APY",
        "current mortgage rates",
        "high-yield savings rate",
        "What is the APR on the 15-year mortgage?",
        "7/6 ARM rate",
        "CD rates",
        "everyday savings apy",
    ],
)
def test_every_figure_of_an_answer_is_in_its_sources(question: str) -> None:
    grounding = pytest.importorskip("bot.generation.grounding")
    answer = ask(question)
    report = grounding.check_grounding(answer.text, [s.text for s in answer.sources])
    assert report.ok, report.unsupported
