"""Terms in what customers type: "15", "15-year", "fifteen years", "the 30 yr one".

Pure functions, standard library only (they run in the action server and in tests).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

NUMBER_WORDS: Final = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15,
    "eighteen": 18, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60,
}  # fmt: skip
_NUMBER: Final = r"(?P<n>\d{1,3}|" + "|".join(NUMBER_WORDS) + r")"
_TERM: Final = re.compile(
    r"\b" + _NUMBER + r"(?:\s*-?\s*(?P<unit>years?|yrs?|y|months?|mos?|m)\b)?", re.IGNORECASE
)
# A reply this short is a bare answer ("15", "the 30 one please"), not a new question.
SHORT_REPLY_WORDS: Final = 5


def _number(raw: str) -> int:
    return NUMBER_WORDS.get(raw.lower()) or int(raw)


def term_months(label: str) -> int | None:
    """Months in a term label: "15 years" -> 180, "6 months" -> 6; None without a unit."""
    for match in _TERM.finditer(label):
        if match["unit"]:
            count = _number(match["n"])
            return count * 12 if match["unit"].lower().startswith("y") else count
    return None


def _leading_number(label: str) -> int | None:
    match = _TERM.search(label)
    return _number(match["n"]) if match else None


def match_term(text: str, choices: Sequence[str]) -> str | None:
    """The one choice `text` names, or None.

    A number with a unit matches the choice of the same length in months ("1 year"
    matches "12 months"); a bare number matches the choice that starts with it ("15"
    matches "15 years"). The first number that picks exactly one choice wins.
    """
    for match in _TERM.finditer(text):
        count = _number(match["n"])
        if match["unit"]:
            months = count * 12 if match["unit"].lower().startswith("y") else count
            found = [c for c in choices if term_months(c) == months]
        else:
            found = [c for c in choices if _leading_number(c) == count]
        if len(found) == 1:
            return found[0]
    return None


def term_in_reply(text: str, choices: Sequence[str]) -> str | None:
    """`match_term` for a reply to "which term?": a number with a unit anywhere, or a
    bare number in a short reply (so "fees for 30 transfers?" is not "30 years")."""
    found = match_term(text, choices)
    if found is None:
        return None
    has_unit = any(m["unit"] for m in _TERM.finditer(text))
    return found if has_unit or len(text.split()) <= SHORT_REPLY_WORDS else None


def join_terms(choices: Sequence[str]) -> str:
    """Choices for a question: "15 or 30 years", "6, 12 or 24 months", "6 months or 1 year"."""
    if not choices:
        return ""
    units = {re.sub(r"^\S+\s*", "", c) for c in choices}
    if len(units) == 1 and all(_leading_number(c) is not None for c in choices):
        return f"{_join_or([c.split()[0] for c in choices])} {units.pop()}".strip()
    return _join_or(list(choices))


def _join_or(items: Sequence[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} or {items[-1]}"


def question_with_term(question: str, term: str) -> str:
    """The rate question with the chosen term: "What's your fixed mortgage rate for 15 years?"."""
    stem = question.strip().rstrip("?!. ")
    return f"{stem} for {term}?"
