"""Rates: loading rate sheets and answering rate questions from their current rows.

    rows = parse_rate_sheet("rates.csv", data)          # or load_rate_sheet(session, ...)
    query = detect_rate_question("what's your 30 year fixed rate?", products=products)
    if query is not None:
        answer = answer_rate_question(query, current_rows, today=date.today())

`RateAnswer.to_dict()` is JSON-ready::

    {"kind": "quoted" | "options" | "none", "text": str, "query": {...},
     "row_ids": [int], "as_of": "YYYY-MM-DD" | null,
     "quotes": [{"row_id", "product", "term", "term_months", "tier", "rate_percent",
                 "apr_percent", "apy_percent", "effective_from", "effective_until",
                 "source"}],
     "sources": [{"row_id", "title", "text", "source"}],
     "clarify": str | null,
     "choices": [{"label", "product", "term", "term_months", "query"}]}
"""

from bot.rates.answer import (
    answer_rate_question,
    current_rows,
    describe,
    display_product,
    render_row,
)
from bot.rates.errors import RateError, RateSheetError, RowProblem
from bot.rates.loader import load_rate_sheet, parse_rate_sheet, parse_term
from bot.rates.matcher import detect_rate_question, match_products, product_families
from bot.rates.types import (
    RateAnswer,
    RateAnswerKind,
    RateChoice,
    RateLike,
    RateQuery,
    RateQuote,
    RateSource,
    Wants,
)

__all__ = [
    "RateAnswer",
    "RateAnswerKind",
    "RateChoice",
    "RateError",
    "RateLike",
    "RateQuery",
    "RateQuote",
    "RateSheetError",
    "RateSource",
    "RowProblem",
    "Wants",
    "answer_rate_question",
    "current_rows",
    "describe",
    "detect_rate_question",
    "display_product",
    "load_rate_sheet",
    "match_products",
    "parse_rate_sheet",
    "parse_term",
    "product_families",
    "render_row",
]
