"""The grounding guard: every figure in an answer must be traceable to a source.

A bank cannot let a generator invent an interest rate, a fee or a deadline. Before an
answer is shown, `check_grounding` extracts every *figure* from it and looks for each
one in the source passages; if any is missing the caller falls back to the extractive
answer (which copies sentences verbatim) or abstains.

What counts as a figure (`extract_figures`), in order of precedence:

- ``percent``: a number followed by ``%``, ``percent``, ``per cent``, ``pct`` or
  ``percentage point(s)``; ``6.125%``, ``6.125 %`` and ``6.1250 percent`` are all
  ``Decimal("6.125")``.
- ``money``: a number with a currency before (``$``, ``US$``, ``€``, ``£``, ``USD 45``)
  or after it (``45 USD``, ``20 dollars``, ``50 cents``), with an optional magnitude
  (``$2.5 million``, ``$5k``). The value is the amount in units of the currency
  (``50 cents`` is ``0.50`` USD) and `unit` is the ISO currency code (``$`` is USD).
- ``date``: ISO (``2026-11-01``), US numeric (``11/01/2026``, month first) and written
  dates (``November 1, 2026``, ``Nov. 1st``, ``1 November 2026``, ``November 2026``).
  The value is ISO 8601: ``2026-11-01``, ``2026-11`` without a day, ``--11-01`` without
  a year.
- ``time``: ``3 p.m.``, ``3:30 PM``, ``15:00``, as ``HH:MM`` on a 24-hour clock.
- ``phone``: North American numbers (``1-800-555-0142``, ``(800) 555-0142``), as their
  ten digits.
- ``number``: any other number (``1,000.00``, ``12``, ``4th``, ``1.5 million``), and
  number words only where they carry a unit (``thirty days``, ``five percent``). A
  duration (``30-year``, ``12 months``, ``3 business days``) is a number whose `unit` is
  the base unit (``year``, ``month``, ``day``...).
- ``code``: a token that mixes digits with letters or slashes (``W-2``, ``7/6``,
  ``1099-INT``, ``401(k)``, ``24/7``) or a URL or e-mail address with a digit in it. Its
  value is the token, lower-cased, with dashes unified and a plural ``s`` dropped.

Not figures: citation markers (``[1]``, ``[2, 3]``), list enumerators at the start of a
line (``1.`` / ``2)``), and signs (a hyphen before a number is far more often a dash or
a range than a minus, so ``-0.25%`` and ``0.25%`` are the same figure).

In a range or list the unit travels: in ``4.5-5%`` and ``3 to 5 business days`` the
first number is a percentage / a duration too, in ``$500-1,000`` the second is money.

When a figure of the answer is supported (`check_grounding`) by a figure of a source:

- ``percent`` and ``money`` are strict: only a source figure of the same kind with an
  equal value (and, for money, the same currency) supports them. ``5%`` is not
  supported by a bare ``5``, nor ``$1,000`` by ``1,000``: a unit the source does not
  state is an invented fact.
- ``number`` is lenient about where the value comes from: a number, percentage or
  amount with an equal value supports it, as does the year of a source date or the same
  digits standing alone in the source text (``555`` in ``1-800-555-0142``). A duration
  also needs the same unit when the source number has one, so ``12 months`` is
  supported by ``12 months``, ``12-month`` or ``terms of 6, 12 and 24 months``, but not
  by ``12 years``.
- ``date``: every part the answer states (year, month, day) must equal the source's;
  ``November 1`` is supported by ``2026-11-01``, ``November 1, 2026`` is not supported
  by ``November 1``.
- ``time``: the same clock time; a time without a.m./p.m. matches either half-day.
- ``phone``: the same ten digits, however formatted.
- ``code``: lenient about form, strict about content: the same normalised token
  anywhere in the source, also inside a longer one (``L6`` in ``MiniLM-L6-v2``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from bot.generation.figures import Figure, FigureKind, extract_figures, normalize_code


@dataclass(frozen=True, slots=True)
class GroundingReport:
    """The result of `check_grounding`. `ok` is true when nothing is unsupported.

    `figures` are every figure of the answer; `unsupported` the raw text of those no
    source supports, in answer order.
    """

    ok: bool
    figures: list[Figure]
    unsupported: list[str]


# --- support ----------------------------------------------------------------------------


def check_grounding(answer: str, sources: Sequence[str]) -> GroundingReport:
    """Check that every figure of `answer` appears in at least one of `sources`.

    Pass the texts of the passages the answer may draw on (normally the cited ones).
    Callers that accept the customer's own numbers echoed back can add the question to
    `sources`. The rules are in the module docstring.
    """
    figures = extract_figures(answer)
    if not figures:
        return GroundingReport(ok=True, figures=[], unsupported=[])
    indexed = [_source_index(text) for text in sources]
    unsupported = [f.raw for f in figures if not any(s.supports(f) for s in indexed)]
    return GroundingReport(ok=not unsupported, figures=figures, unsupported=unsupported)


@lru_cache(maxsize=1024)
def _source_index(text: str) -> _SourceIndex:
    # Cached: a streamed answer is checked sentence by sentence against the same
    # passages, and popular passages recur across questions.
    return _SourceIndex(text)


class _SourceIndex:
    """The figures of one source text, extracted once and grouped by kind. Immutable."""

    def __init__(self, text: str) -> None:
        self._text = text
        self._lowered = normalize_code(re.sub(r"\s+", " ", text))
        self._by_kind: dict[str, list[Figure]] = {}
        for figure in extract_figures(text):
            self._by_kind.setdefault(figure.kind, []).append(figure)

    def _of(self, *kinds: str) -> Iterable[Figure]:
        for kind in kinds:
            yield from self._by_kind.get(kind, ())

    def supports(self, figure: Figure) -> bool:
        if figure.kind == "percent":
            return any(s.value == figure.value for s in self._of("percent"))
        if figure.kind == "money":
            return any(s.value == figure.value and s.unit == figure.unit for s in self._of("money"))
        if figure.kind == "number":
            return self._supports_number(figure)
        if figure.kind == "date":
            return any(_date_within(str(figure.value), str(s.value)) for s in self._of("date"))
        if figure.kind == "time":
            return any(_same_time(figure, s) for s in self._of("time"))
        if figure.kind == "phone":
            return any(s.value == figure.value for s in self._of("phone"))
        return self._supports_code(str(figure.value))

    def _supports_number(self, figure: Figure) -> bool:
        if figure.unit is not None:  # a duration: same unit, or a source number without one
            return any(
                s.value == figure.value and s.unit in (None, figure.unit)
                for s in self._of("number")
            )
        if any(s.value == figure.value for s in self._of("number", "percent", "money")):
            return True
        if any(str(s.value)[:4] == str(figure.value) for s in self._of("date")):
            return True  # "in 2026" supported by "2026-11-01"
        digits = re.escape(figure.raw.strip())
        return re.search(rf"(?<![\d.,]){digits}(?![\d]|[.,]\d)", self._text) is not None

    def _supports_code(self, code: str) -> bool:
        if any(s.value == code for s in self._of("code")):
            return True
        pattern = rf"(?<![a-z0-9]){re.escape(code)}s?(?![a-z0-9])"
        return re.search(pattern, self._lowered) is not None


def _date_within(answer: str, source: str) -> bool:
    """True when every part of the ISO `answer` date equals that part of `source`."""
    a, s = _date_parts(answer), _date_parts(source)
    return all(part is None or part == s[i] for i, part in enumerate(a))


def _date_parts(value: str) -> tuple[str | None, str | None, str | None]:
    if value.startswith("--"):
        return None, value[2:4], value[5:7]
    parts = value.split("-")
    return parts[0], parts[1], parts[2] if len(parts) > 2 else None


def _same_time(answer: Figure, source: Figure) -> bool:
    if answer.value == source.value:
        return True
    if "12h" not in (answer.unit, source.unit):
        return False
    a_hour, a_min = str(answer.value).split(":")
    s_hour, s_min = str(source.value).split(":")
    return a_min == s_min and int(a_hour) % 12 == int(s_hour) % 12


__all__ = ["Figure", "FigureKind", "GroundingReport", "check_grounding", "extract_figures"]
