"""Redaction of personal data in free text, before anything leaves the database.

`redact` finds entities with checksum-validated patterns (python-stdnum) and phone
numbers with Google's libphonenumber (`phonenumbers`), then replaces each with a typed
placeholder such as ``[CARD]``. What is detected, and by which rule:

- ``[EMAIL]``: ``local@domain.tld`` in any case.
- ``[IBAN]``: two letters, two check digits and 11 to 30 letters/digits, spaced, dashed or
  not, any country; kept only when ISO 13616 mod-97 and the country's length/format pass.
- ``[CARD]``: 13 to 19 digits, optionally grouped by spaces, dashes or dots, that pass Luhn.
- ``[ROUTING]``: a US ABA routing number (9 digits, checksum
  ``3(d1+d4+d7) + 7(d2+d5+d8) + (d3+d6+d9) ≡ 0 (mod 10)``) preceded within a few words by
  "routing", "ABA", "RTN", "transit" or "wire"; and a UK sort code after "sort code".
- ``[ACCOUNT]``: 4 to 17 digits right after "account (number|no|#)", "acct", "acc" or "a/c",
  optionally joined by "is", ":", "#", "ending in"...
- ``[NATIONAL_ID]``: US SSN and ITIN (``ddd-dd-dddd`` with spaces, dashes or dots, or nine
  plain digits after "SSN"/"social security"/"ITIN"; invalid areas such as 000, 666 and
  known specimen numbers are ignored), UK National Insurance number (two prefix letters
  with the HMRC exclusions, six digits, suffix A to D), Canadian SIN (nine digits passing
  Luhn, written 3-3-3 or after "SIN"/"social insurance"), Spanish DNI/NIE (check letter)
  and Italian codice fiscale (check character).
- ``[PHONE]``: any number `phonenumbers` finds valid for the US or UK, or in
  international form (``+CC`` or ``00CC``) for any country, unless the same number (in
  E.164 form) is in ``allow``: the bank's own published numbers.
- ``[ADDRESS]``: a US street address: house number, up to four street-name words and a
  street suffix ("St", "Avenue", "Blvd"...), with an optional unit ("Apt 4B", "Suite
  200", "#12") and an optional "City, ST 12345[-6789]" tail; also "P.O. Box 123".

Money ("$4,000.00"), percentages ("6.125%"), dates ("2026-11-01", "11/01/2026"), short
numbers ("12 months", "30-year", "7/6 ARM") and order numbers are left alone: none of
them has the length, checksum or context the rules above need.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import phonenumbers
from stdnum import iban, luhn
from stdnum.ca import sin
from stdnum.es import dni, nie
from stdnum.it import codicefiscale
from stdnum.us import itin, rtn, ssn

PLACEHOLDERS = ("CARD", "ACCOUNT", "ROUTING", "IBAN", "NATIONAL_ID", "EMAIL", "PHONE", "ADDRESS")
DEFAULT_PHONE_REGIONS = ("US", "GB")


@dataclass(frozen=True, slots=True)
class RedactionResult:
    """Redacted text and how many entities of each kind were replaced."""

    text: str
    counts: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, order=True)
class _Span:
    start: int
    end: int
    kind: str
    priority: int


_Detector = Callable[[str], Iterator[_Span]]

# Separators people type inside long numbers.
_SEP = r"[ \-.]?"
# Letters may touch a number ("card4111..."), digits, decimals and currency may not.
_DIGIT_RUN = re.compile(rf"(?<![\d.,$€£])\d(?:{_SEP}\d){{8,18}}(?![\d%]|[.,]\d)")
_EMAIL = re.compile(r"(?<![\w.+-])[\w.%+-]+@(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,24}\b")
_IBAN = re.compile(r"\b[A-Za-z]{2}\d{2}(?:[ \-]?[A-Za-z0-9]){11,34}")
_SSN = re.compile(r"(?<![\w.-])(\d{3})([ .-])(\d{2})\2(\d{4})(?![\w%]|[.-]\d)")
_SIN_GROUPED = re.compile(r"(?<![\w.-])\d{3}([ .-])\d{3}\1\d{3}(?![\w%]|[.-]\d)")
_NINO = re.compile(
    r"\b(?!BG|GB|KN|NK|NT|TN|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]"
    r"\s?\d{2}\s?\d{2}\s?\d{2}\s?[A-D]\b",
    re.IGNORECASE,
)
_DNI_NIE = re.compile(r"\b[XYZ]?\d{7,8}-?[A-Z]\b", re.IGNORECASE)
_CODICE_FISCALE = re.compile(r"\b[A-Z]{6}\d{2}[A-Z]\d{2}[A-Z]\d{3}[A-Z]\b", re.IGNORECASE)

_NUMBER = r"(\d(?:[ \-]?\d){3,16})(?![\w%]|[.,]\d)"
_ACCOUNT = re.compile(
    r"\b(?:account|acct|acc|a/c)\b\.?"
    r"(?:\s*(?:number|num|nbr|no|#)\b\.?)?"
    r"(?:\s*(?:is|was|:|=|#|-|ending\s+(?:in|with)|ends\s+(?:in|with)))*\s*" + _NUMBER,
    re.IGNORECASE,
)
_ROUTING_CONTEXT = re.compile(r"\b(?:routing|aba|rtn|transit|wire)\b", re.IGNORECASE)
_SORT_CODE = re.compile(
    r"\bsort\s*code\b[^\d\n]{0,12}(\d{2}[ -]?\d{2}[ -]?\d{2})(?![\w%])", re.IGNORECASE
)
_SSN_CONTEXT = re.compile(r"\b(?:ssn|social\s+security|itin|tin)\b", re.IGNORECASE)
_SIN_CONTEXT = re.compile(r"\b(?:sin|social\s+insurance)\b", re.IGNORECASE)
_CONTEXT_WINDOW = 40

_STREET_SUFFIX = (
    r"(?:street|st|avenue|ave|av|road|rd|boulevard|blvd|lane|ln|drive|dr|court|ct|place|pl"
    r"|terrace|ter|way|circle|cir|parkway|pkwy|highway|hwy|square|sq|trail|trl|plaza|plz"
    r"|alley|aly|crescent|cres|loop|pike|turnpike|tpke|expressway|expy|freeway|fwy)"
)
_STATES = (
    r"(?:AL|AK|AZ|AR|CA|CO|CT|DE|DC|FL|GA|HI|ID|IL|IN|IA|KS|KY|LA|ME|MD|MA|MI|MN|MS|MO|MT"
    r"|NE|NV|NH|NJ|NM|NY|NC|ND|OH|OK|OR|PA|RI|SC|SD|TN|TX|UT|VT|VA|WA|WV|WI|WY|PR|VI|GU)"
)
_ZIP = r"\d{5}(?:-\d{4})?"
# Words that never start or sit inside a street name ("2 more court dates").
_NOT_STREET = r"(?!(?:a|an|the|of|to|in|on|at|for|and|or|my|your|our|more|less|times|per)\b)"
_ADDRESS = re.compile(
    r"\b\d{1,6}(?:-\d{1,4})?[A-Za-z]?\s+"
    r"(?:(?:[NSEW]|north|south|east|west|NE|NW|SE|SW)\.?\s+)?"
    rf"(?:{_NOT_STREET}[A-Za-z0-9][A-Za-z0-9'.-]*\s+){{1,4}}?"
    rf"{_STREET_SUFFIX}\b\.?"
    r"(?:\s+(?:[NSEW]|NE|NW|SE|SW)\b\.?)?"
    r"(?:,?\s*(?:apt|apartment|suite|ste|unit|fl|floor|rm|room|#)\.?\s*#?\s*[A-Za-z0-9-]+\b)?"
    rf"(?:,?\s*(?:[A-Za-z][A-Za-z.'-]*\s?){{1,3}},?\s+"
    rf"(?:(?-i:{_STATES})\.?(?:\s+{_ZIP})?|{_STATES}\s+{_ZIP})\b"
    rf"|,?\s+{_ZIP}\b)?",
    re.IGNORECASE,
)
_PO_BOX = re.compile(r"\bP\.?\s?O\.?\s*Box\s+\d{1,6}\b", re.IGNORECASE)


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


def _preceded_by(pattern: re.Pattern[str], text: str, start: int) -> bool:
    """Whether a context word comes shortly before `start`, with no other number between."""
    matches = list(pattern.finditer(text, max(0, start - _CONTEXT_WINDOW), start))
    return bool(matches) and not any(ch.isdigit() for ch in text[matches[-1].end() : start])


def _emails(text: str) -> Iterator[_Span]:
    for m in _EMAIL.finditer(text):
        yield _Span(m.start(), m.end(), "EMAIL", 100)


def _ibans(text: str) -> Iterator[_Span]:
    pos = 0
    while (m := _IBAN.search(text, pos)) is not None:
        # The pattern may run into the next word; keep the longest prefix that validates,
        # else look again from the next character (an IBAN may start inside the match).
        candidate, pos = m.group(), m.start() + 1
        for end in range(len(candidate), 14, -1):
            after = m.start() + end
            if not candidate[end - 1].isalnum() or (after < len(text) and text[after].isalnum()):
                continue
            if iban.is_valid(candidate[:end].upper()):
                yield _Span(m.start(), after, "IBAN", 90)
                pos = after
                break


def _cards(text: str) -> Iterator[_Span]:
    for m in _DIGIT_RUN.finditer(text):
        groups = list(re.finditer(r"\d+", m.group()))
        # Try every run of whole digit groups, longest first, so a card followed by
        # another number ("4111 1111 1111 1111 1234") is still found.
        best: tuple[int, int] | None = None
        for i in range(len(groups)):
            for j in range(len(groups) - 1, i - 1, -1):
                digits = "".join(g.group() for g in groups[i : j + 1])
                if 13 <= len(digits) <= 19 and luhn.is_valid(digits):
                    span = (groups[i].start(), groups[j].end())
                    if best is None or span[1] - span[0] > best[1] - best[0]:
                        best = span
                    break
        if best is not None:
            yield _Span(m.start() + best[0], m.start() + best[1], "CARD", 80)


def _routing(text: str) -> Iterator[_Span]:
    for m in _DIGIT_RUN.finditer(text):
        digits = _digits(m.group())
        if (
            len(digits) == 9
            and rtn.is_valid(digits)
            and _preceded_by(_ROUTING_CONTEXT, text, m.start())
        ):
            yield _Span(m.start(), m.end(), "ROUTING", 75)
    for m in _SORT_CODE.finditer(text):
        yield _Span(m.start(1), m.end(1), "ROUTING", 75)


def _accounts(text: str) -> Iterator[_Span]:
    for m in _ACCOUNT.finditer(text):
        yield _Span(m.start(1), m.end(1), "ACCOUNT", 70)


def _national_ids(text: str) -> Iterator[_Span]:
    for m in _SSN.finditer(text):
        number = f"{m.group(1)}{m.group(3)}{m.group(4)}"
        if ssn.is_valid(number) or itin.is_valid(number):
            yield _Span(m.start(), m.end(), "NATIONAL_ID", 60)
    for m in _DIGIT_RUN.finditer(text):
        digits = _digits(m.group())
        if len(digits) != 9:
            continue
        us_id = ssn.is_valid(digits) or itin.is_valid(digits)
        if (us_id and _preceded_by(_SSN_CONTEXT, text, m.start())) or (
            sin.is_valid(digits) and _preceded_by(_SIN_CONTEXT, text, m.start())
        ):
            yield _Span(m.start(), m.end(), "NATIONAL_ID", 77)
    for m in _SIN_GROUPED.finditer(text):
        if sin.is_valid(_digits(m.group())):
            yield _Span(m.start(), m.end(), "NATIONAL_ID", 55)
    for m in _NINO.finditer(text):
        yield _Span(m.start(), m.end(), "NATIONAL_ID", 60)
    for m in _DNI_NIE.finditer(text):
        value = m.group().replace("-", "").upper()
        if dni.is_valid(value) or nie.is_valid(value):
            yield _Span(m.start(), m.end(), "NATIONAL_ID", 60)
    for m in _CODICE_FISCALE.finditer(text):
        if codicefiscale.is_valid(m.group().upper()):
            yield _Span(m.start(), m.end(), "NATIONAL_ID", 60)


def _addresses(text: str) -> Iterator[_Span]:
    for pattern in (_ADDRESS, _PO_BOX):
        for m in pattern.finditer(text):
            yield _Span(m.start(), m.end(), "ADDRESS", 30)


def _phones(text: str, regions: tuple[str, ...], allow: frozenset[str]) -> Iterator[_Span]:
    for region in regions:
        matcher = phonenumbers.PhoneNumberMatcher(
            text, region, leniency=phonenumbers.Leniency.VALID
        )
        for match in matcher:
            e164 = phonenumbers.format_number(match.number, phonenumbers.PhoneNumberFormat.E164)
            if e164 not in allow:
                # The matcher may include a leading blank in the raw string.
                raw = match.raw_string
                start = match.start + len(raw) - len(raw.lstrip())
                yield _Span(start, match.start + len(raw.rstrip()), "PHONE", 40)


@functools.lru_cache(maxsize=64)
def _normalise_allow(allow: frozenset[str], regions: tuple[str, ...]) -> frozenset[str]:
    numbers: set[str] = set()
    for raw in allow:
        for region in regions:
            try:
                parsed = phonenumbers.parse(raw, region)
            except phonenumbers.NumberParseException:
                continue
            numbers.add(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))
    return frozenset(numbers)


def _resolve(spans: Iterable[_Span]) -> list[_Span]:
    """Keep non-overlapping spans: higher priority first, then the longer one."""
    chosen: list[_Span] = []
    for span in sorted(spans, key=lambda s: (-s.priority, -(s.end - s.start), s.start)):
        if all(span.end <= c.start or span.start >= c.end for c in chosen):
            chosen.append(span)
    return sorted(chosen)


_DETECTORS: tuple[_Detector, ...] = (
    _emails,
    _ibans,
    _cards,
    _routing,
    _accounts,
    _national_ids,
    _addresses,
)


def redact(
    text: str,
    allow: Iterable[str] = (),
    *,
    regions: Iterable[str] = DEFAULT_PHONE_REGIONS,
) -> RedactionResult:
    """Replace personal data in `text` with typed placeholders (see the module docstring).

    `allow` lists phone numbers to keep (any format; compared as E.164), normally the
    bank's published numbers. `regions` are the ISO country codes whose national phone
    formats are recognised; international ``+CC`` numbers are found whatever the region.
    When two detections overlap, the more specific one wins (email > IBAN > card >
    contextual routing/SSN > account > other national ids > phone > address), then the
    longer one.
    """
    if not text:
        return RedactionResult(text, {})
    region_tuple = tuple(regions)
    allowed = _normalise_allow(frozenset(allow), region_tuple)
    spans: list[_Span] = []
    for detector in _DETECTORS:
        spans.extend(detector(text))
    spans.extend(_phones(text, region_tuple, allowed))
    kept = _resolve(spans)
    if not kept:
        return RedactionResult(text, {})
    parts: list[str] = []
    cursor = 0
    for span in kept:
        parts.append(text[cursor : span.start])
        parts.append(f"[{span.kind}]")
        cursor = span.end
    parts.append(text[cursor:])
    counts = Counter(span.kind for span in kept)
    return RedactionResult("".join(parts), dict(sorted(counts.items())))


def find_phone_numbers(text: str, *, regions: Iterable[str] = DEFAULT_PHONE_REGIONS) -> list[str]:
    """Valid phone numbers in `text`, as E.164 strings in order of appearance, deduplicated.

    Used to build the allow-list from the bank's own knowledge passages.
    """
    found: dict[str, None] = {}
    for region in regions:
        matcher = phonenumbers.PhoneNumberMatcher(
            text, region, leniency=phonenumbers.Leniency.VALID
        )
        for match in matcher:
            found.setdefault(
                phonenumbers.format_number(match.number, phonenumbers.PhoneNumberFormat.E164)
            )
    return list(found)
