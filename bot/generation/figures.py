"""Figures in text: numbers, percentages, amounts, dates, times, phones and codes.

The extraction half of the grounding guard. What counts as a figure, its canonical
value, and why, is documented in `bot.generation.grounding`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from typing import Literal

from bot.generation.types import CITATION_MARKER

FigureKind = Literal["number", "percent", "money", "date", "time", "phone", "code"]


@dataclass(frozen=True, slots=True)
class Figure:
    """A figure found in text. `raw` is the text as written (``start:end`` in it).

    `value` is canonical: a `Decimal` for numbers, percentages and amounts, an ISO 8601
    string for dates, ``HH:MM`` for times, ten digits for phones, a normalised token for
    codes. `unit` is the currency code for money, the base unit for a duration, and
    ``"12h"`` for a time written without a.m./p.m. (either half-day).
    """

    raw: str
    kind: FigureKind
    value: Decimal | str
    unit: str | None = None
    start: int = 0
    end: int = 0


# --- patterns ---------------------------------------------------------------------------

_NUM = r"(?:\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|(?<![\d.])\.\d+)"
# fmt: off
_ONES = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
    "eighteen", "nineteen",
]
# fmt: on
_TENS = ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_WORD_NUM = (
    rf"(?<![A-Za-z])(?i:(?:{'|'.join(_TENS)})(?:[-\s](?:{'|'.join(_ONES[1:10])}))?"
    rf"|{'|'.join(sorted(_ONES, key=len, reverse=True))})"
)
_NUM_OR_WORD = rf"(?:{_NUM}|{_WORD_NUM})"
_MAGNITUDE_WORD = r"(?i:thousand|million|billion|trillion)"
_MONTH = (
    r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?"
    r"|Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)(?![A-Za-z])\.?"
)
_ORD = r"(?:st|nd|rd|th)"
_CURRENCY_SYMBOL = r"(?:US\$|CA?\$|AU?\$|NZ\$|HK\$|\$|€|£|¥|₹)"
_CURRENCY_CODE = r"(?:USD|EUR|GBP|CAD|AUD|NZD|CHF|JPY|INR|HKD)(?![A-Za-z])"
_CURRENCY_WORD = r"(?i:dollars?|euros?|pounds?(?:\s+sterling)?|cents?)(?![A-Za-z])"
_UNIT_WORD = (
    r"(?i:(?:(?:business|calendar|banking|working)[\s-]+)?(?:days?|weeks?|months?|years?|yrs?"
    r"|hours?|hrs?|minutes?|mins?|quarters?)|basis\s+points?|bps)(?![A-Za-z])"
)

# Alternatives in order of precedence: at each position the first that matches wins.
_ALTERNATIVES: tuple[tuple[str, str], ...] = (
    (
        "url",
        r"(?i:https?://|www\.)[^\s<>\"')\]]+|(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+",
    ),
    (
        "phone",
        r"(?<![\d\w])(?:\+?1[\s.-]?)?(?:\(\d{3}\)\s?|\d{3}[\s.-])\d{3}[\s.-]\d{4}(?!\d)",
    ),
    ("iso_date", r"(?<![\d/.-])\d{4}[-/.]\d{1,2}[-/.]\d{1,2}(?![\d/-])"),
    ("us_date", r"(?<![\d/])\d{1,2}/\d{1,2}/(?:\d{4}|\d{2})(?![\d/])"),
    ("month_day", rf"{_MONTH}\s*\d{{1,2}}{_ORD}?(?:,?\s+\d{{4}})?(?![\d,]\d|\d)"),
    ("day_month", rf"(?<![\d.])\d{{1,2}}{_ORD}?\s+(?:of\s+)?{_MONTH}(?:,?\s+\d{{4}}(?!\d))?"),
    ("month_year", rf"{_MONTH},?\s+\d{{4}}(?!\d)"),
    (
        "time",
        r"(?<![\d:.])\d{1,2}(?::[0-5]\d)?\s?(?i:a\.m\.|p\.m\.|a\.m|p\.m|am|pm)(?![A-Za-z])"
        r"|(?<![\d:.])(?:[01]?\d|2[0-3]):[0-5]\d(?![\d:])",
    ),
    (
        "money_before",
        rf"(?<![A-Za-z])(?:{_CURRENCY_SYMBOL}|{_CURRENCY_CODE})\s?{_NUM}"
        rf"(?:\s?{_MAGNITUDE_WORD}(?![A-Za-z])|(?:k|K|M|MM|mm|bn|BN|B)(?![A-Za-z]))?",
    ),
    (
        "money_after",
        rf"{_NUM_OR_WORD}(?:\s?{_MAGNITUDE_WORD})?\s?(?:{_CURRENCY_CODE}|{_CURRENCY_WORD}|€|£|¢)",
    ),
    (
        "percent",
        rf"{_NUM_OR_WORD}\s?(?:%|(?i:percentage\s+points?|per\s?cent|pct)(?![A-Za-z]))",
    ),
    ("duration", rf"{_NUM_OR_WORD}\s?-?\s?{_UNIT_WORD}"),
    ("ordinal", rf"(?<![\w.])\d+{_ORD}(?![A-Za-z])"),
    ("code", r"(?<![A-Za-z0-9])\d+\([A-Za-z]\)"),
    (
        "code",
        r"(?<![A-Za-z0-9])(?=[A-Za-z0-9/.-]{0,63}\d)(?=[A-Za-z0-9/.-]{0,63}[A-Za-z/])"
        r"[A-Za-z0-9]+(?:[-/.][A-Za-z0-9]+)*",
    ),
    ("number", rf"{_NUM}(?:\s{_MAGNITUDE_WORD}(?![A-Za-z]))?"),
)
_FIGURE = re.compile(
    "|".join(f"(?P<{name}_{i}>{pattern})" for i, (name, pattern) in enumerate(_ALTERNATIVES))
)
_ENUMERATOR = re.compile(r"^[ \t]*\d{1,2}[.)](?=[ \t])", re.MULTILINE)
_NUM_RE = re.compile(_NUM)
_WORD_NUM_RE = re.compile(_WORD_NUM)
_MONTHS = {
    m: i
    for i, m in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"],
        start=1,
    )
}
_MAGNITUDES = {
    "thousand": 3,
    "k": 3,
    "million": 6,
    "m": 6,
    "mm": 6,
    "billion": 9,
    "bn": 9,
    "b": 9,
    "trillion": 12,
}
_CURRENCIES = (
    (re.compile(r"US\$|USD|\$|dollar|cent|¢", re.I), "USD"),
    (re.compile(r"€|EUR|euro", re.I), "EUR"),
    (re.compile(r"£|GBP|pound", re.I), "GBP"),
    (re.compile(r"CA?\$|CAD"), "CAD"),
    (re.compile(r"AU?\$|AUD"), "AUD"),
    (re.compile(r"NZ\$|NZD"), "NZD"),
    (re.compile(r"HK\$|HKD"), "HKD"),
    (re.compile(r"¥|JPY"), "JPY"),
    (re.compile(r"₹|INR"), "INR"),
    (re.compile(r"CHF"), "CHF"),
)
_UNITS = (
    ("bas", "bp"),
    ("bp", "bp"),
    ("quarter", "quarter"),
    ("min", "minute"),
    ("h", "hour"),
    ("y", "year"),
    ("mo", "month"),
    ("w", "week"),
    ("d", "day"),
)
_LEFT_CONNECTOR = re.compile(r"\s*(?:-|\u2013|\u2014|to|through|and|or)\s*")
_CURRENCY_FIRST = re.compile(rf"{_CURRENCY_SYMBOL}|{_CURRENCY_CODE}")
_RIGHT_CONNECTOR = re.compile(r"\s*(?:-|\u2013|\u2014|to|through)\s*")


# --- extraction -------------------------------------------------------------------------


def extract_figures(text: str) -> list[Figure]:
    """Every figure in `text`, in order; see the module docstring for what counts."""
    masked = _ENUMERATOR.sub(lambda m: " " * len(m.group()), text)
    masked = CITATION_MARKER.sub(lambda m: " " * len(m.group()), masked)
    figures: list[Figure] = []
    for match in _FIGURE.finditer(masked):
        assert match.lastgroup is not None
        kind = match.lastgroup.rsplit("_", 1)[0]
        figure = _BUILDERS[kind](match.group())
        if figure is not None:
            figures.append(replace(figure, start=match.start(), end=match.end()))
    return _propagate_units(figures, masked)


def _canonical(value: Decimal) -> Decimal:
    """The same value without trailing zeros or exponent: 6.1250 -> 6.125, 1E+3 -> 1000."""
    try:
        if value == value.to_integral_value():
            return value.quantize(Decimal(1))
        return value.normalize()
    except InvalidOperation:  # more digits than the context's precision: keep as written
        return value


def _number(raw: str) -> Decimal:
    match = _NUM_RE.search(raw)
    if match is not None:
        return _canonical(Decimal(match.group().replace(",", "")))
    word = _WORD_NUM_RE.search(raw)
    if word is None:  # pragma: no cover - every pattern that reaches here has a number
        raise ValueError(f"no number in {raw!r}")
    return Decimal(_word_value(word.group()))


def _word_value(word: str) -> int:
    parts = re.split(r"[-\s]+", word.lower())
    value = 0
    for part in parts:
        value += _TENS.index(part) * 10 + 20 if part in _TENS else _ONES.index(part)
    return value


def _scaled(raw: str, value: Decimal) -> Decimal:
    match = re.search(r"(?i:thousand|million|billion|trillion|mm|bn|[kmb])(?![A-Za-z])\s*$", raw)
    if match is None or match.group().isspace():
        return value
    return _canonical(value.scaleb(_MAGNITUDES[match.group().strip().lower()]))


def _currency(raw: str) -> str:
    for pattern, code in _CURRENCIES[3:]:  # the specific dollars before the plain "$"
        if pattern.search(raw):
            return code
    for pattern, code in _CURRENCIES[:3]:
        if pattern.search(raw):
            return code
    return "?"  # pragma: no cover - the money patterns only admit the currencies above


def _money(raw: str) -> Figure:
    value = _number(raw)
    without_currency = re.sub(
        rf"{_CURRENCY_SYMBOL}|{_CURRENCY_CODE}|{_CURRENCY_WORD}|€|£|¢", "", raw
    ).strip()
    value = _scaled(without_currency, value)
    if re.search(r"(?i:cents?)(?![A-Za-z])|¢", raw):
        value = _canonical(value / 100)
    return Figure(raw, "money", value, unit=_currency(raw))


def _percent(raw: str) -> Figure:
    return Figure(raw, "percent", _number(raw))


def _duration(raw: str) -> Figure:
    unit_match = re.search(_UNIT_WORD, raw)
    assert unit_match is not None
    word = re.sub(r"(?i:business|calendar|banking|working)[\s-]+", "", unit_match.group())
    unit = next(base for prefix, base in _UNITS if word.lower().startswith(prefix))
    return Figure(raw, "number", _number(raw), unit=unit)


def _plain_number(raw: str) -> Figure:
    return Figure(raw, "number", _scaled(raw, _number(raw)))


def _phone(raw: str) -> Figure:
    digits = re.sub(r"\D", "", raw)
    return Figure(raw, "phone", digits[-10:])


def _date(raw: str, year: int | None, month: int, day: int | None) -> Figure | None:
    try:
        dt.date(year if year is not None else 2000, month, day or 1)  # 2000: leap year
    except ValueError:
        return Figure(raw, "code", normalize_code(raw))  # not a real date: match it literally
    if year is None:
        return Figure(raw, "date", f"--{month:02d}-{day:02d}")
    if day is None:
        return Figure(raw, "date", f"{year:04d}-{month:02d}")
    return Figure(raw, "date", f"{year:04d}-{month:02d}-{day:02d}")


def _month_number(raw: str) -> int:
    match = re.search(r"[A-Z][a-z]{2}", raw)
    assert match is not None
    return _MONTHS[match.group().lower()]


def _ints(raw: str) -> list[int]:
    return [int(part) for part in re.findall(r"\d+", raw)]


def _iso_date(raw: str) -> Figure | None:
    year, month, day = _ints(raw)
    return _date(raw, year, month, day)


def _us_date(raw: str) -> Figure | None:
    month, day, year = _ints(raw)
    return _date(raw, year + 2000 if year < 100 else year, month, day)


def _written_date(raw: str) -> Figure | None:
    parts = re.findall(r"\d+", raw)
    day = next((int(p) for p in parts if len(p) <= 2), None)
    year = next((int(p) for p in parts if len(p) == 4), None)
    return _date(raw, year, _month_number(raw), day)


def _time(raw: str) -> Figure:
    hour, minute = ([*_ints(raw), 0])[:2]
    meridiem = re.search(r"(?i:[ap])\.?\s?(?i:m)", raw)
    if meridiem is None:
        if 1 <= hour <= 12:
            return Figure(raw, "time", f"{hour % 12:02d}:{minute:02d}", unit="12h")
        return Figure(raw, "time", f"{hour:02d}:{minute:02d}")
    hour = hour % 12 + (12 if meridiem.group()[0] in "pP" else 0)
    return Figure(raw, "time", f"{hour:02d}:{minute:02d}")


def normalize_code(raw: str) -> str:
    """A code as compared: lower case, dashes unified, a plural ``s`` after a digit dropped."""
    value = re.sub(r"[\u2010-\u2015\u2212]", "-", raw).lower()
    return value[:-1] if re.search(r"\ds$", value) else value


def _code(raw: str) -> Figure:
    return Figure(raw, "code", normalize_code(raw))


def _url(raw: str) -> Figure | None:
    raw = raw.rstrip(".,;:!?")
    return Figure(raw, "code", raw.lower()) if any(c.isdigit() for c in raw) else None


_BUILDERS: dict[str, Callable[[str], Figure | None]] = {
    "url": _url,
    "phone": _phone,
    "iso_date": _iso_date,
    "us_date": _us_date,
    "month_day": _written_date,
    "day_month": _written_date,
    "month_year": _written_date,
    "time": _time,
    "money_before": _money,
    "money_after": _money,
    "percent": _percent,
    "duration": _duration,
    "ordinal": _plain_number,
    "code": _code,
    "number": _plain_number,
}


def _propagate_units(figures: list[Figure], text: str) -> list[Figure]:
    """Give a bare number in a range or list the unit of its neighbour (see module doc)."""
    result = list(figures)
    for i in range(len(result) - 2, -1, -1):  # right to left, so units chain leftwards
        left, right = result[i], result[i + 1]
        if not _is_bare(left) or not _LEFT_CONNECTOR.fullmatch(text[left.end : right.start]):
            continue
        if right.kind == "percent" or (right.kind == "number" and right.unit is not None):
            result[i] = replace(left, kind=right.kind, unit=right.unit)
        elif right.kind == "money" and _CURRENCY_FIRST.match(right.raw) is None:
            cents = re.search(r"(?i:cents?)|¢", right.raw) is not None
            value = _canonical(Decimal(left.value) / 100) if cents else left.value
            result[i] = replace(left, kind="money", value=value, unit=right.unit)
    for i in range(1, len(result)):
        left, right = result[i - 1], result[i]
        gap = text[left.end : right.start]
        if left.kind == "money" and _is_bare(right) and _RIGHT_CONNECTOR.fullmatch(gap):
            result[i] = replace(right, kind="money", unit=left.unit)
    return result


def _is_bare(figure: Figure) -> bool:
    return figure.kind == "number" and figure.unit is None
