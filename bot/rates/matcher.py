"""Understanding rate questions: is it one, which product, which term, which number.

Products are data: the stored product names are matched through a small synonym table
of product families ("cd" ~ "certificate of deposit") and through word overlap with the
question, never through a list of the products a given bank sells.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

from bot.rates.loader import term_label
from bot.rates.types import RateQuery, Wants

# Product families and the phrases that name them, in questions and in product names.
PRODUCT_SYNONYMS: Final[dict[str, tuple[str, ...]]] = {
    "mortgage": (
        "mortgage",
        "mortgages",
        "home loan",
        "home loans",
        "house loan",
        "housing loan",
        "arm",
        "arms",
        "adjustable rate mortgage",
    ),
    "heloc": (
        "heloc",
        "helocs",
        "home equity line",
        "home equity lines",
        "home equity line of credit",
        "home equity",
        "equity line",
    ),
    "cd": (
        "cd",
        "cds",
        "certificate",
        "certificates",
        "certificate of deposit",
        "certificates of deposit",
        "term deposit",
        "term deposits",
        "time deposit",
        "share certificate",
    ),
    "savings": ("savings", "saving", "savings account", "savings accounts"),
    "money market": ("money market", "money markets", "mma"),
    "checking": ("checking", "checking account", "checking accounts"),
    "auto loan": ("auto loan", "auto loans", "car loan", "car loans", "vehicle loan", "auto"),
    "personal loan": ("personal loan", "personal loans"),
    "student loan": ("student loan", "student loans"),
    "credit card": ("credit card", "credit cards"),
    "ira": ("ira", "iras", "retirement account"),
}

_RATE_WORDS: Final = frozenset(
    {"rate", "rates", "apr", "aprs", "apy", "apys", "interest", "yield", "yields", "dividend"}
)
# "Rate" in these senses is not about our rate sheet.
_NOT_RATE: Final = re.compile(
    r"\b(exchange|conversion|fx|currency|forex|rate (this|my|the|an?|your) (answer|reply|"
    r"chat|experience|service)|rate limit|heart rate|success rate|approval rate)\b"
)
_GENERIC: Final = re.compile(
    r"\b(interest rates?|apr|apy|(your|current|todays|latest|best) rates?"
    r"|what( are)?( the| your)? rates)\b"
)
_PAYS: Final = re.compile(r"\bhow much\b.*\b(pay|pays|paying|earn|earns|earning)\b")
_DEPOSITS: Final = frozenset({"cd", "savings", "money market", "checking", "ira"})
_NUMBER_WORDS: Final = {
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "twelve": 12,
    "fifteen": 15,
    "eighteen": 18,
    "twenty": 20,
    "thirty": 30,
    "sixty": 60,
}
_NUMBER: Final = r"(?P<n>\d{1,3}|" + "|".join(_NUMBER_WORDS) + r")"
_TERM_IN_TEXT: Final = re.compile(
    _NUMBER + r"\s*-?\s*(?P<unit>years?|yrs?|months?|mos?)\b"
    r"|(?P<n2>\d{1,3})(?P<unit2>y|m)\b"
)
# A time other than today ("last year", "in 2024", "next month"): only today's rows are
# ever quoted, and the answer says so (see `RateQuery.period`).
_FORECAST = r"forecasts?|predictions?|predict|outlook"
_PERIOD: Final = re.compile(
    r"\b(?:(?:last|previous|past|prior|next) (?:year|month|week|quarter|spring|summer|fall"
    r"|autumn|winter)"
    r"|(?:a|one|two|three|four|five|six|ten|twelve|\d{1,2}|few|couple of) (?:years?|months?"
    r"|weeks?) ago"
    r"|(?:in|for|during|back in|since) (?:19|20)\d\d"
    rf"|historical|history|used to (?:be|pay|earn|get)|{_FORECAST})\b"
)
FUTURE_PERIOD: Final = re.compile(rf"\b(?:next|{_FORECAST})\b")
"""Words that put a `RateQuery.period` in the future; a year ("in 2024") is past or
future only against today's date, which the answer compares."""
# "boat loan", "payday loans": a kind of loan the synonym table does not name.
_NAMED_LOAN: Final = re.compile(r"\b([a-z]+) loans?\b")
_ASKS_FIGURE: Final = re.compile(r"\b(rates?|aprs?|apys?)\b")
# Words of a term, not of a product ("30", "years", "5y").
_TERMISH: Final = re.compile(r"[\d.$/]+|years?|yrs?|months?|mos?|\d+[ym]")
_FIXED: Final = re.compile(r"\bfixed\b")
_ADJUSTABLE: Final = re.compile(r"\b(adjustable|variable|arms?|\d+ ?/ ?\d+)\b")
_ARM: Final = re.compile(r"\b(\d+) ?/ ?(\d+)\b")  # "5/1 ARM", "7 / 6"
# Words that say nothing about which product is meant.
_STOPWORD_TEXT: Final = """
    a about account accounts am an and any are at be best can current currently do does for
    from get give have how i in is it latest length me much my new now of offer offered
    offering on open opening or our pay pays please right s show tell term terms the these
    this to today todays us want what whats which with would you your
"""
_STOPWORDS: Final = frozenset(_STOPWORD_TEXT.split())


def normalize_text(text: str) -> str:
    """Lower-case words separated by single spaces; "/" ("7/6 ARM") and decimal points kept."""
    lowered = re.sub(
        r"(?<!\d)\.|\.(?!\d)", " ", text.lower().replace("'", "").replace("\u2019", "")
    )
    return " ".join(re.sub(r"[^a-z0-9/.]+", " ", lowered).split())


def _has_phrase(normalized: str, phrase: str) -> bool:
    return f" {phrase} " in f" {normalized} "


def product_families(text: str) -> list[str]:
    """The product families named in `text` (a question or a product name), in table order."""
    normalized = normalize_text(text)
    return [
        family
        for family, phrases in PRODUCT_SYNONYMS.items()
        if any(_has_phrase(normalized, phrase) for phrase in phrases)
    ]


def find_term_months(text: str) -> int | None:
    """The first term in `text` in months: "30 year" -> 360, "6-month" -> 6, "5y" -> 60."""
    for match in _TERM_IN_TEXT.finditer(normalize_text(text).replace("-", " ")):
        raw, unit = (match["n"], match["unit"]) if match["n"] else (match["n2"], match["unit2"])
        count = _NUMBER_WORDS.get(raw) or int(raw)
        if count > 0:
            return term_label(count, unit)[1]
    return None


def _words(text: str) -> set[str]:
    return {w.strip(".") for w in re.split(r"[\s\-/]+", normalize_text(text)) if w.strip(".")}


def _family_words(families: Iterable[str]) -> set[str]:
    return {w for f in families for phrase in PRODUCT_SYNONYMS[f] for w in phrase.split()}


def _wants(normalized: str) -> Wants:
    if _has_phrase(normalized, "apr") or "annual percentage rate" in normalized:
        return "apr"
    stripped = normalized.replace("high yield", "")
    if re.search(r"\b(apy|yield|annual percentage yield)\b", stripped):
        return "apy"
    return "rate"


def detect_rate_question(text: str, *, products: Iterable[str] = ()) -> RateQuery | None:
    """A `RateQuery` when `text` asks for one of our rates, else None.

    It is a rate question when it mentions a rate word (rate, APR, APY, interest,
    yield; or "how much ... pay/earn" with a deposit product) together with something
    to look up: a product family, a term, fixed/adjustable, a word of one of the stored
    `products`, or a general "current rates"/"interest rate". "Exchange rate" and
    rating an answer are not rate questions.
    """
    normalized = normalize_text(text)
    if not normalized or _NOT_RATE.search(normalized):
        return None
    period = _PERIOD.search(normalized)
    if period is not None:  # "2 years ago" is not a 2-year term, "last" not a product word
        normalized = " ".join(_PERIOD.sub(" ", normalized).split())
    families = product_families(normalized)
    words = _words(normalized)
    pays = bool(_PAYS.search(normalized)) and any(f in _DEPOSITS for f in families)
    # "High-yield" names a product; by itself it does not ask for a rate.
    asks_rate = bool(_words(normalized.replace("high yield", " ")) & _RATE_WORDS)
    if not (asks_rate or pays):
        return None
    term_months = find_term_months(normalized)
    fixed = bool(_FIXED.search(normalized))
    adjustable = bool(_ADJUSTABLE.search(normalized))
    product_words = set().union(*(_words(p) for p in products)) - _STOPWORDS - _RATE_WORDS
    keywords = sorted(
        w
        for w in words - _STOPWORDS - _RATE_WORDS - _family_words(families)
        if not _TERMISH.fullmatch(w)
    )
    known = [w for w in keywords if w in product_words]
    # Only a question that asks for a rate: "tax benefit on the interest paid on an
    # education loan" is not one.
    asks_figure = _ASKS_FIGURE.search(normalized) is not None
    loan = _NAMED_LOAN.search(normalized) if asks_figure and not families else None
    loan_kind = None
    if loan is not None and loan[1] in keywords:  # not "my loan", "30 year loan"
        loan_kind = f"{loan[1]} loan"
    if not (
        families
        or term_months
        or fixed
        or adjustable
        or known
        or loan_kind
        or _GENERIC.search(normalized)
    ):
        return None
    return RateQuery(
        text=text,
        product_hint=families[0] if families else None,
        term_months=term_months,
        wants=_wants(normalized),
        fixed=fixed,
        adjustable=adjustable,
        keywords=tuple(keywords),
        arm=arm_structure(normalized),
        period=period[0] if period else None,
        loan_kind=loan_kind,
    )


def arm_structure(text: str) -> str | None:
    """The adjustable-rate structure `text` names ("5/1" in "a 5/1 ARM"), or None."""
    match = _ARM.search(normalize_text(text))
    return f"{int(match[1])}/{int(match[2])}" if match else None


def match_products(query: RateQuery, products: Iterable[str]) -> list[str]:
    """The stored products `query` may mean, best matches only, sorted.

    With a product family: the products of that family, narrowed to those sharing the
    most keywords with the question when any share one. With a loan kind the table does
    not know ("boat loan"): only products with its first word ("boat"), maybe none.
    Without: the products sharing the most keywords, or every product when none shares
    one (the term and the fixed/adjustable hints narrow further when answering).
    """
    candidates = sorted(set(products))
    if query.product_hint is not None:
        candidates = [p for p in candidates if query.product_hint in product_families(p)]
    if query.loan_kind is not None:  # a boat loan is not an auto loan
        qualifier = query.loan_kind.split(" ")[0]
        candidates = [p for p in candidates if qualifier in _words(p)]
    keywords = set(query.keywords)
    if query.fixed:
        keywords.add("fixed")
    scores = {p: len(keywords & _words(p)) for p in candidates}
    best = max(scores.values(), default=0)
    if best == 0:
        return candidates
    return [p for p in candidates if scores[p] == best]


def mentions_term(product: str, months: int) -> bool:
    """Whether a product name spells out a term of `months` ("30-year fixed mortgage")."""
    return find_term_months(product) == months


__all__ = [
    "PRODUCT_SYNONYMS",
    "arm_structure",
    "detect_rate_question",
    "find_term_months",
    "match_products",
    "mentions_term",
    "normalize_text",
    "product_families",
]
