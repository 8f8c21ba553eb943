"""Answering rate questions from the current rows of the rate sheet.

Only rows in force on `today` are ever quoted: expired rows (`effective_until` before
today), future rows (`effective_from` after today) and superseded rows are dropped
first, and nothing falls back to them. Numbers are quoted exactly as stored ("6.125"
stays "6.125"), each with "as of <effective_from>" and its source.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Final, TypeVar

from bot.rates.matcher import (
    FUTURE_PERIOD,
    arm_structure,
    find_term_months,
    match_products,
    mentions_term,
)
from bot.rates.types import (
    RateAnswer,
    RateChoice,
    RateLike,
    RateQuery,
    RateQuote,
    RateSource,
    Wants,
)

R = TypeVar("R", bound=RateLike)

# Rows listed with their numbers in an "options" answer; beyond, only names are listed.
MAX_LISTED_ROWS: Final = 8
# Options named in a clarifying question; beyond, the question asks for the product.
MAX_CHOICES: Final = 12
_FAMILY_LABELS: Final = {"cd": "CD", "heloc": "HELOC", "ira": "IRA"}


def current_rows(rows: Iterable[R], *, today: dt.date) -> list[R]:
    """The rows in force on `today`: started, not ended, not superseded; for the same
    (product, term, tier) only the one with the latest `effective_from` (then the
    highest id). Sorted by product, term in months and term, tiers in load order."""
    best: dict[tuple[str, str | None, str | None], R] = {}
    for row in rows:
        if getattr(row, "superseded_at", None) is not None or row.effective_from > today:
            continue
        if row.effective_until is not None and row.effective_until < today:
            continue
        key = (row.product, row.term, row.tier)
        held = best.get(key)
        if held is None or (row.effective_from, row.id) > (held.effective_from, held.id):
            best[key] = row
    # Tiers keep the sheet's order (row ids): "under $10,000" before "$10,000 and above".
    return sorted(
        best.values(),
        key=lambda r: (r.product, r.term_months is None, r.term_months or 0, r.term or "", r.id),
    )


def render_row(row: RateLike) -> str:
    """A row as one line holding every number an answer may quote from it.

    "30-year fixed mortgage | term: 30 years | rate: 6.125% | APR: 6.291% |
    effective: 2026-11-01 to further notice | source: Harbor Bank rate sheet 2026-11"
    """
    parts = [row.product]
    if row.term:
        parts.append(f"term: {row.term}")
    if row.term_months is not None:
        parts.append(f"term in months: {row.term_months}")
    if row.tier:
        parts.append(f"tier: {row.tier}")
    parts.append(f"rate: {row.rate_percent}%")
    if row.apr_percent:
        parts.append(f"APR: {row.apr_percent}%")
    if row.apy_percent:
        parts.append(f"APY: {row.apy_percent}%")
    until = row.effective_until.isoformat() if row.effective_until else "further notice"
    parts.append(f"effective: {row.effective_from.isoformat()} to {until}")
    parts.append(f"source: {row.source}")
    return " | ".join(parts)


_TERM_WORDS: Final = re.compile(r"^(\d+) (year|month)s?$")
_TERM_IN_NAME: Final = re.compile(r"\b\d{1,3}\s*-?\s*(?:years?|yrs?|months?|mos?)\b")
# Shown upper-case in answers; products are stored lower-case.
_ACRONYMS: Final = frozenset({"arm", "arms", "cd", "cds", "heloc", "ira", "hsa", "apr", "apy"})


def _term_adjective(months: int, term: str | None = None) -> str:
    """ "12-month" or "30-year", in the unit the sheet used when it says one."""
    match = _TERM_WORDS.match(term or "")
    if match is not None:
        return f"{match[1]}-{match[2]}"
    return f"{months // 12}-year" if months % 12 == 0 else f"{months}-month"


def display_product(product: str) -> str:
    """A stored (lower-case) product name for people: "7/6 arm mortgage" -> "7/6 ARM mortgage"."""
    return " ".join(w.upper() if w in _ACRONYMS else w for w in product.split(" "))


def describe(product: str, term: str | None, term_months: int | None) -> str:
    """A product with its term: "12-month certificate of deposit", "30-year fixed
    mortgage" (the term is not repeated when the name already says it)."""
    name = display_product(product)
    if term_months is not None:
        if mentions_term(product, term_months):
            return name
        return f"{_term_adjective(term_months, term)} {name}"
    return f"{name} ({term})" if term else name


def _months(row: RateLike) -> int | None:
    return row.term_months if row.term_months is not None else find_term_months(row.product)


def _numbers(row: RateLike, wants: Wants) -> tuple[str, str, list[str]]:
    """(name of the lead number, the lead number, the other numbers) for `wants`."""
    if wants == "apy" and row.apy_percent:
        others = [f"interest rate {row.rate_percent}%"]
        others += [f"APR {row.apr_percent}%"] if row.apr_percent else []
        return "APY", f"{row.apy_percent}%", others
    if wants == "apr" and row.apr_percent:
        others = [f"rate {row.rate_percent}%"]
        others += [f"APY {row.apy_percent}%"] if row.apy_percent else []
        return "APR", f"{row.apr_percent}%", others
    others = [f"APR {row.apr_percent}%"] if row.apr_percent else []
    others += [f"APY {row.apy_percent}%"] if row.apy_percent else []
    return "rate", f"{row.rate_percent}%", others


def _figures(row: RateLike, wants: Wants) -> str:
    name, lead, others = _numbers(row, wants)
    prefix = "" if name == "rate" else f"{name} "
    return prefix + lead + (f" ({', '.join(others)})" if others else "")


def _join_or(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} or {items[-1]}"


def _sources_line(rows: Sequence[RateLike]) -> str:
    names = list(dict.fromkeys(row.source for row in rows))
    return f"{'Source' if len(names) == 1 else 'Sources'}: {'; '.join(names)}."


def _quote(row: RateLike) -> RateQuote:
    return RateQuote(
        row_id=row.id,
        product=row.product,
        term=row.term,
        term_months=row.term_months,
        tier=row.tier,
        rate_percent=row.rate_percent,
        apr_percent=row.apr_percent,
        apy_percent=row.apy_percent,
        effective_from=row.effective_from,
        effective_until=row.effective_until,
        source=row.source,
    )


def _sources(rows: Sequence[RateLike]) -> tuple[RateSource, ...]:
    return tuple(
        RateSource(
            row_id=row.id,
            text=render_row(row),
            source=row.source,
            title=f"{row.source}: {_label(row)}" + (f", {row.tier}" if row.tier else ""),
        )
        for row in rows
    )


def _is_adjustable(product: str) -> bool:
    words = set(product.split())
    return bool(words & {"arm", "arms", "adjustable", "variable"}) or bool(
        re.search(r"\d+/\d+", product)
    )


def _label(row: RateLike) -> str:
    return describe(row.product, row.term, _months(row))


def _quoted(query: RateQuery, rows: Sequence[RateLike]) -> RateAnswer:
    first = rows[0]
    what = _label(first)
    if len(rows) == 1:
        name, lead, others = _numbers(first, query.wants)
        extra = f" ({', '.join(others)})" if others else ""
        text = (
            f"Our {what} {name} is {lead}{extra}, as of {first.effective_from.isoformat()}. "
            f"{_sources_line(rows)}"
        )
    else:  # one product and term, several tiers
        dates = {row.effective_from for row in rows}
        same_date = len(dates) == 1
        parts = []
        for row in rows:
            part = f"{row.tier or 'standard'}: {_figures(row, query.wants)}"
            parts.append(part if same_date else f"{part}, as of {row.effective_from.isoformat()}")
        header = f"Our {what} rates"
        if same_date:
            header += f", as of {first.effective_from.isoformat()}"
        text = f"{header}: {'; '.join(parts)}. {_sources_line(rows)}"
    return RateAnswer(
        kind="quoted",
        text=text,
        query=query,
        quotes=tuple(_quote(row) for row in rows),
        sources=_sources(rows),
    )


Group = tuple[str, str | None]


def _groups(rows: Sequence[R]) -> dict[Group, list[R]]:
    groups: dict[Group, list[R]] = {}
    for row in rows:
        groups.setdefault((row.product, row.term), []).append(row)
    return groups


def _term_question(groups: dict[Group, list[R]]) -> tuple[str, list[str]]:
    """The clarifying question when only the term varies, and a label per group."""
    months = [_months(rows[0]) for rows in groups.values()]
    if all(m is not None and m % 12 == 0 for m in months):
        numbers = [str(m // 12) for m in months if m is not None]
        labels = [f"{n} year{'s' if n != '1' else ''}" for n in numbers]
        return f"Which term are you interested in: {_join_or(numbers)} years?", labels
    if all(m is not None for m in months):
        numbers = [str(m) for m in months if m is not None]
        labels = [f"{n} month{'s' if n != '1' else ''}" for n in numbers]
        return f"Which term are you interested in: {_join_or(numbers)} months?", labels
    labels = [term or "no fixed term" for _product, term in groups]
    return f"Which term are you interested in: {_join_or(labels)}?", labels


def _without_term(product: str) -> str:
    return " ".join(_TERM_IN_NAME.sub(" ", product).split())


def _choices(query: RateQuery, groups: dict[Group, list[R]]) -> tuple[str, list[RateChoice]]:
    products = list(dict.fromkeys(product for product, _term in groups))
    wanted = {"rate": "rate", "apr": "APR", "apy": "APY"}[query.wants]
    # "15-year fixed mortgage" and "30-year fixed mortgage" differ only by their term.
    one_product = len({_without_term(p) for p in products}) == 1
    if one_product and len(groups) > 1:
        clarify, labels = _term_question(groups)
    elif len(groups) <= MAX_CHOICES:
        labels = [_label(rows[0]) for rows in groups.values()]
        clarify = f"Which one are you interested in: {_join_or(labels)}?"
    else:  # too many to list: ask for the product first
        names = [display_product(p) for p in products]
        clarify = f"Which product are you interested in: {_join_or(names)}?"
        choices = [
            RateChoice(name, p, None, None, f"{name} {wanted}")
            for name, p in zip(names, products, strict=True)
        ]
        return clarify, choices
    choices = [
        RateChoice(
            label=label,
            product=rows[0].product,
            term=rows[0].term,
            term_months=rows[0].term_months,
            query=f"{_label(rows[0])} {wanted}",
        )
        for label, rows in zip(labels, groups.values(), strict=True)
    ]
    return clarify, choices


def _options(query: RateQuery, groups: dict[Group, list[R]]) -> RateAnswer:
    rows = [row for members in groups.values() for row in members]
    clarify, choices = _choices(query, groups)
    family = _FAMILY_LABELS.get(query.product_hint or "", query.product_hint or "")
    if len(rows) <= MAX_LISTED_ROWS:
        lines = [
            f"- {_label(row)}{f', {row.tier}' if row.tier else ''}: "
            f"{_figures(row, query.wants)}, as of {row.effective_from.isoformat()}"
            for row in rows
        ]
        header = f"Here are our current {f'{family} ' if family else ''}rates:"
        text = "\n".join([header, *lines, _sources_line(rows), clarify])
    else:
        text = f"We have current rates for several products. {clarify}"
    return RateAnswer(
        kind="options",
        text=text,
        query=query,
        clarify=clarify,
        choices=tuple(choices),
        quotes=tuple(_quote(row) for row in rows),
        sources=_sources(rows),
    )


def _asked_for(query: RateQuery, products: Sequence[str]) -> str:
    """What the question asked for, with its article: "a 5/1 ARM", "an 18-month
    certificate of deposit", "that product"."""
    if query.arm is not None and all(arm_structure(p) != query.arm for p in products):
        return f"a {query.arm} ARM"
    if len(products) == 1:
        name = display_product(products[0])
    elif query.product_hint:
        name = _FAMILY_LABELS.get(query.product_hint, query.product_hint)
        if query.fixed and "fixed" not in name:
            name = f"fixed {name}"
    elif query.loan_kind:
        name = query.loan_kind
    else:
        return (
            "that product"
            if query.term_months is None
            else f"a {_term_adjective(query.term_months)} term"
        )
    if query.term_months is not None and not mentions_term(name, query.term_months):
        name = f"{_term_adjective(query.term_months)} {name}"
    return f"{_article(name)} {name}"


# Numbers and acronym letters whose spoken form starts with a vowel sound ("an 8-year",
# "an 11-month", "an IRA", "an HSA"); "a HELOC" is said as a word.
_AN_NUMBER: Final = re.compile(r"^(8\d*|11|18)\b")
_AN_LETTERS: Final = frozenset("AEFHILMNORSX")


def _article(name: str) -> str:
    """ "a" or "an" for `name`, by how it is said."""
    first = name.split(" ", 1)[0].split("-", 1)[0]
    if first[:1].isdigit():
        return "an" if _AN_NUMBER.match(first) else "a"
    if first.isupper() and first.lower() in _ACRONYMS and first != "HELOC":
        return "an" if first[0] in _AN_LETTERS else "a"
    return "an" if first[:1].lower() in "aeio" else "a"


def _none(
    query: RateQuery, products: Sequence[str], alternatives: dict[Group, list[R]]
) -> RateAnswer:
    text = f"We don't have a current rate for {_asked_for(query, products)}, so I can't quote one."
    if not alternatives:
        return RateAnswer(kind="none", text=text, query=query)
    clarify, choices = _choices(query, alternatives)
    if len(choices) == 1:  # "Which one are you interested in: X?" with one X reads oddly;
        # not a yes/no question either, which the Rasa front end would not take a "yes" to.
        clarify = f"We do have a current rate for our {choices[0].label}."
    # The alternatives are offered, not quoted: their rows are the sources of the terms
    # and names the clarifying question mentions.
    rows = [row for members in alternatives.values() for row in members]
    return RateAnswer(
        kind="none",
        text=f"{text} {clarify}",
        query=query,
        sources=_sources(rows),
        clarify=clarify,
        choices=tuple(choices),
    )


def _narrow(rows: list[R], keep: Iterable[R]) -> list[R]:
    """`keep` when it is not empty: a soft filter, for hints a product name may not spell."""
    kept = list(keep)
    return kept or rows


def answer_rate_question(
    query: RateQuery, rows: Sequence[RateLike], *, today: dt.date
) -> RateAnswer:
    """Answer `query` from `rows` (current or not: only those in force `today` count).

    "quoted" when one product and term match (all its tiers are quoted), "options" with
    a clarifying question when several do, "none" when no current row matches (the
    text says so and quotes no number; `choices` offer other terms of the product).
    """
    answer = _answer(query, current_rows(rows, today=today))
    note = _period_note(query.period, today)
    return answer if note is None else replace(answer, text=f"{note} {answer.text}")


_YEAR: Final = re.compile(r"\b(?:19|20)\d\d\b")


def _period_note(period: str | None, today: dt.date) -> str | None:
    """What the answer says first when the question names another time than today."""
    if period is None:
        return None
    year = _YEAR.search(period)
    if year is not None and int(year[0]) == today.year:
        return None  # "rates in 2026" in 2026: today's rates are this year's
    if FUTURE_PERIOD.search(period) or (year is not None and int(year[0]) > today.year):
        return "I can only quote today's rates and can't say what future rates will be."
    return "I can only quote today's rates; I don't have past rates to give."


def _answer(query: RateQuery, current: list[R]) -> RateAnswer:
    products = match_products(query, {row.product for row in current})
    candidates = [row for row in current if row.product in products]
    if query.fixed:
        candidates = _narrow(candidates, (r for r in candidates if "fixed" in r.product))
    if query.adjustable:
        candidates = _narrow(candidates, (r for r in candidates if _is_adjustable(r.product)))
    if not candidates:
        return _none(query, products, {})
    if query.arm is not None:
        # A 5/1 ARM is not a 7/6 ARM: never quote one for the other.
        shaped = [row for row in candidates if arm_structure(row.product) == query.arm]
        if not shaped:
            return _none(query, sorted({r.product for r in candidates}), _groups(candidates))
        candidates = shaped
    if query.term_months is not None:
        termed = [row for row in candidates if _months(row) == query.term_months]
        if not termed:
            return _none(query, sorted({r.product for r in candidates}), _groups(candidates))
        candidates = termed
    groups = _groups(candidates)
    if len(groups) == 1:
        return _quoted(query, candidates)
    return _options(query, groups)
