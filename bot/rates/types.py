"""Value types of the rate domain: the parsed question, the rows it reads, the answer."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Literal, Protocol

Wants = Literal["rate", "apr", "apy"]
RateAnswerKind = Literal["quoted", "options", "none"]


class RateLike(Protocol):
    """What answering needs from a rate row; `db.models.RateRow` satisfies it.

    A row may also have `superseded_at` (a superseded row is never quoted).
    """

    @property
    def id(self) -> int: ...
    @property
    def product(self) -> str: ...
    @property
    def term(self) -> str | None: ...
    @property
    def term_months(self) -> int | None: ...
    @property
    def tier(self) -> str | None: ...
    @property
    def rate_percent(self) -> str: ...
    @property
    def apr_percent(self) -> str | None: ...
    @property
    def apy_percent(self) -> str | None: ...
    @property
    def effective_from(self) -> dt.date: ...
    @property
    def effective_until(self) -> dt.date | None: ...
    @property
    def source(self) -> str: ...


@dataclass(frozen=True, slots=True)
class RateQuery:
    """A question understood as a rate question.

    `product_hint` is a product family from the synonym table ("mortgage", "cd",
    "savings", "heloc", "auto loan", ...) or None; `keywords` are the question's other
    content words ("high", "yield", "jumbo"), matched against the stored product names;
    `term_months` the term asked for; `wants` the number asked for; `arm` an
    adjustable-rate structure asked for ("5/1": fixed 5 years, then adjusting yearly);
    `period` a time other than today the question names ("last year", "in 2024", "next
    month"), which the answer must say it cannot quote; `loan_kind` a kind of loan no
    product family names ("boat loan"), which only products with its first word match.
    """

    text: str
    product_hint: str | None = None
    term_months: int | None = None
    wants: Wants = "rate"
    fixed: bool = False
    adjustable: bool = False
    keywords: tuple[str, ...] = ()
    arm: str | None = None
    period: str | None = None
    loan_kind: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "text": self.text,
            "product_hint": self.product_hint,
            "term_months": self.term_months,
            "wants": self.wants,
            "fixed": self.fixed,
            "adjustable": self.adjustable,
            "keywords": list(self.keywords),
            "arm": self.arm,
            "period": self.period,
            "loan_kind": self.loan_kind,
        }


@dataclass(frozen=True, slots=True)
class RateQuote:
    """The numbers of one rate row as used in an answer, strings exactly as stored."""

    row_id: int
    product: str
    term: str | None
    term_months: int | None
    tier: str | None
    rate_percent: str
    apr_percent: str | None
    apy_percent: str | None
    effective_from: dt.date
    effective_until: dt.date | None
    source: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (dates as ISO strings)."""
        return {
            "row_id": self.row_id,
            "product": self.product,
            "term": self.term,
            "term_months": self.term_months,
            "tier": self.tier,
            "rate_percent": self.rate_percent,
            "apr_percent": self.apr_percent,
            "apy_percent": self.apy_percent,
            "effective_from": self.effective_from.isoformat(),
            "effective_until": self.effective_until and self.effective_until.isoformat(),
            "source": self.source,
        }


@dataclass(frozen=True, slots=True)
class RateSource:
    """A rate row rendered as one line for the grounding guard and citations.

    `text` contains every number the answer quotes from the row (rates, term, tier,
    dates), so a check that each number in the answer appears in a source passes;
    `title` names the sheet and the product for a citation.
    """

    row_id: int
    text: str
    source: str
    title: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "row_id": self.row_id,
            "title": self.title,
            "text": self.text,
            "source": self.source,
        }


@dataclass(frozen=True, slots=True)
class RateChoice:
    """One option offered by a clarifying question (a button in the front end).

    `query` is a question that picks exactly this option when sent back.
    """

    label: str
    product: str
    term: str | None
    term_months: int | None
    query: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "label": self.label,
            "product": self.product,
            "term": self.term,
            "term_months": self.term_months,
            "query": self.query,
        }


@dataclass(frozen=True, slots=True)
class RateAnswer:
    """The answer to a rate question.

    - "quoted": one product and term (all its tiers); `text` quotes the stored strings
      with "as of <effective_from>" and the source;
    - "options": several products or terms match; `text` lists them (with their numbers
      when there are few) and ends with `clarify`; `choices` are the options;
    - "none": no current row matches; `text` says so and quotes no rate. `choices` may
      offer the current alternatives (for example the terms that do exist); `sources`
      are then their rows, which the offered names and terms come from.
    """

    kind: RateAnswerKind
    text: str
    query: RateQuery
    quotes: tuple[RateQuote, ...] = ()
    sources: tuple[RateSource, ...] = ()
    clarify: str | None = None
    choices: tuple[RateChoice, ...] = ()

    @property
    def status(self) -> RateAnswerKind:
        """Alias of `kind`."""
        return self.kind

    def query_dict(self) -> dict[str, Any]:
        """The understood question, JSON-ready (for the answer trace)."""
        return self.query.to_dict()

    @property
    def row_ids(self) -> list[int]:
        """Ids of the rate rows the answer was built from (for the answer trace)."""
        return [quote.row_id for quote in self.quotes]

    @property
    def as_of(self) -> dt.date | None:
        """The latest effective date among the quoted rows."""
        return max((quote.effective_from for quote in self.quotes), default=None)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form; the shape is shown in the `bot.rates` docstring."""
        return {
            "kind": self.kind,
            "text": self.text,
            "query": self.query.to_dict(),
            "row_ids": self.row_ids,
            "as_of": self.as_of and self.as_of.isoformat(),
            "quotes": [quote.to_dict() for quote in self.quotes],
            "sources": [source.to_dict() for source in self.sources],
            "clarify": self.clarify,
            "choices": [choice.to_dict() for choice in self.choices],
        }
