"""Recognising rate questions and mapping them to the products in the rate table."""

from __future__ import annotations

import pytest

from bot.rates.matcher import (
    detect_rate_question,
    find_term_months,
    match_products,
    product_families,
)
from bot.rates.types import RateQuery

PRODUCTS = [
    "30-year fixed mortgage",
    "15-year fixed mortgage",
    "7/6 arm mortgage",
    "home equity line of credit",
    "everyday savings",
    "high-yield savings",
    "certificate of deposit",
]


@pytest.mark.parametrize(
    ("text", "hint", "months", "wants", "fixed", "adjustable"),
    [
        ("what's your 30 year fixed rate?", None, 360, "rate", True, False),
        ("CD rates for 12 months", "cd", 12, "rate", False, False),
        ("savings APY", "savings", None, "apy", False, False),
        ("current mortgage rates", "mortgage", None, "rate", False, False),
        ("how much interest does a 6 month cd pay", "cd", 6, "rate", False, False),
        ("How much does a 1 year CD pay?", "cd", 12, "rate", False, False),
        ("What's the APR on a 15-yr home loan", "mortgage", 180, "apr", False, False),
        ("rate for a 30-yr fixed", None, 360, "rate", True, False),
        ("HELOC rates", "heloc", None, "rate", False, False),
        ("what's the rate on a home equity line of credit", "heloc", None, "rate", False, False),
        ("7/6 ARM rate?", "mortgage", None, "rate", False, True),
        ("adjustable rate mortgage rates", "mortgage", None, "rate", False, True),
        ("auto loan rates", "auto loan", None, "rate", False, False),
        ("car loan interest rate", "auto loan", None, "rate", False, False),
        ("what are your rates?", None, None, "rate", False, False),
        (
            "What's the yield on a certificate of deposit for five years?",
            "cd",
            60,
            "apy",
            False,
            False,
        ),
        ("Interest rate for a 12-month CD.", "cd", 12, "rate", False, False),
    ],
)
def test_rate_questions(
    text: str, hint: str | None, months: int | None, wants: str, fixed: bool, adjustable: bool
) -> None:
    query = detect_rate_question(text)
    assert query is not None
    assert (query.product_hint, query.term_months, query.wants) == (hint, months, wants)
    assert (query.fixed, query.adjustable) == (fixed, adjustable)
    assert query.text == text


@pytest.mark.parametrize(
    "text",
    [
        "why was my card declined?",
        "what is the wire fee?",
        "How do I reset my password?",
        "what's the exchange rate for euros?",
        "I want to rate this answer",
        "how do I pay my mortgage?",
        "When is my CD maturing?",
        "How does High-Yield Savings work?",
        "Will we get tax benefit on the interest paid on education loan",
        "Is there a minimum balance for high yield savings?",
        "open a savings account",
        "",
        "rates",
    ],
)
def test_not_rate_questions(text: str) -> None:
    assert detect_rate_question(text) is None


def test_words_of_stored_products_make_a_rate_question() -> None:
    assert detect_rate_question("what's the everyday rate?") is None
    query = detect_rate_question("what's the everyday rate?", products=PRODUCTS)
    assert query is not None and query.keywords == ("everyday",)


def test_high_yield_is_a_product_word_not_a_request_for_apy() -> None:
    query = detect_rate_question("high-yield savings rate")
    assert query is not None
    assert (query.product_hint, query.wants, query.keywords) == ("savings", "rate", ("high",))


@pytest.mark.parametrize(
    ("text", "months"),
    [
        ("30 year", 360),
        ("30-yr", 360),
        ("15 years", 180),
        ("12 month", 12),
        ("1 year", 12),
        ("18-month", 18),
        ("5y", 60),
        ("six months", 6),
        ("7/6 arm", None),
        ("$10,000", None),
    ],
)
def test_terms_in_text(text: str, months: int | None) -> None:
    assert find_term_months(text) == months


def test_product_families_from_synonyms() -> None:
    assert product_families("certificate of deposit") == ["cd"]
    assert product_families("7/6 arm mortgage") == ["mortgage"]
    assert product_families("home equity line of credit") == ["heloc"]
    assert product_families("high-yield savings") == ["savings"]
    assert product_families("platinum rewards") == []


def _match(text: str, products: list[str] = PRODUCTS) -> list[str]:
    query = detect_rate_question(text, products=products)
    assert query is not None
    return match_products(query, products)


def test_matching_uses_synonyms_and_word_overlap() -> None:
    assert _match("CD rates") == ["certificate of deposit"]
    assert _match("home loan rates") == [
        "15-year fixed mortgage",
        "30-year fixed mortgage",
        "7/6 arm mortgage",
    ]
    assert _match("30 year fixed rate") == ["15-year fixed mortgage", "30-year fixed mortgage"]
    assert _match("high yield savings apy") == ["high-yield savings"]
    assert _match("savings apy") == ["everyday savings", "high-yield savings"]
    assert _match("heloc rate") == ["home equity line of credit"]
    assert _match("auto loan rate") == []
    assert _match("what are your rates") == sorted(PRODUCTS)


def test_products_are_data_not_code() -> None:
    products = ["platinum money market", "share certificate", "jumbo 30-year mortgage"]
    assert _match("money market rates", products) == ["platinum money market"]
    assert _match("12 month certificate rate", products) == ["share certificate"]
    assert _match("jumbo rates", products) == ["jumbo 30-year mortgage"]


def test_query_to_dict() -> None:
    query = RateQuery(text="cd rates", product_hint="cd", term_months=12, keywords=("a",))
    assert query.to_dict() == {
        "text": "cd rates",
        "product_hint": "cd",
        "term_months": 12,
        "wants": "rate",
        "fixed": False,
        "adjustable": False,
        "keywords": ["a"],
        "arm": None,
        "period": None,
        "loan_kind": None,
    }


@pytest.mark.parametrize(
    ("text", "period", "months"),
    [
        ("What was the 30 year fixed rate last year?", "last year", 360),
        ("cd rates a year ago", "a year ago", None),
        ("12 month cd rate 3 years ago", "3 years ago", 12),
        ("savings rate back in 2019", "back in 2019", None),
        ("what is the history of your mortgage rates", "history", None),
        ("mortgage rate outlook", "outlook", None),
        ("what is your 30 year fixed rate?", None, 360),
        ("rate on a 2 year cd", None, 24),
    ],
)
def test_another_time_is_read_apart_from_the_term(
    text: str, period: str | None, months: int | None
) -> None:
    query = detect_rate_question(text)
    assert query is not None
    assert (query.period, query.term_months) == (period, months)
    assert not {"last", "ago", "history", "outlook", "back"} & set(query.keywords)


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("What's the rate on a boat loan?", "boat loan"),
        ("payday loans interest rates", "payday loan"),
        ("car loan rate", None),  # a family of the synonym table
        ("what is the interest rate on my loan", None),
        ("30 year loan rate", None),
    ],
)
def test_a_kind_of_loan_the_table_does_not_know(text: str, kind: str | None) -> None:
    query = detect_rate_question(text)
    assert query is not None and query.loan_kind == kind


def test_a_named_loan_matches_only_products_of_its_kind() -> None:
    products = ["auto loan", "boat loan", "jumbo 30-year mortgage"]
    assert _match("boat loan rate", products) == ["boat loan"]
    assert _match("boat loan rate", ["auto loan"]) == []
    assert _match("jumbo loan rate", products) == ["jumbo 30-year mortgage"]
