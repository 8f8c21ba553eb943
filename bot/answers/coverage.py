"""Does the answer speak about what the question asks? Question-term coverage.

The cosine floor (`best_cosine`) asks whether some passage is about the question's
topic, and a question the knowledge base does not cover often clears it: "Can I rent a
safe deposit box?" finds the certificate-of-deposit page, "How do I reset my online
banking password?" the identity-verification page, and the composer then answers with
their sentences. Coverage asks the narrower question: how much of what the question
names appears in what the answer shows?

    coverage = sum(idf(t) for question terms t in the evidence) / sum(idf(t))

Question terms are the question's words without English function words, analysed like
keyword search (lower-case, stemmed), each counted once; the evidence is the answer's
own words plus the titles and headings of the passages it cites; `idf` is
``log((N + 1) / (df + 0.5))`` over the indexed chunks (at least 0.1), so a rare word
("safe", "deposit box", "Zelle") weighs more than "account" and a word no chunk
contains weighs most. Pure functions; the pipeline gets the counts from the index.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Final

import tantivy
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from retrieval.analysis import build_analyzer

# scikit-learn's list is a general one; these of its words name things a bank's
# customers ask about ("interest", "amount", "bill", "due", "top up", "5% down").
_MEANINGFUL: Final = frozenset(
    ["interest", "amount", "bill", "call", "due", "full", "name", "top", "up", "down",
     "back", "first", "last", "system", "move", "keep", "find", "fire", "front", "side"]
)  # fmt: skip
# Words of asking rather than of the thing asked about ("when will it come?", "what
# happens if ..."): a small knowledge base may hold none of them, which would make them
# weigh the most.
_ASKING: Final = frozenset(
    ["does", "did", "doing", "just", "ok", "okay", "want", "like", "know", "tell", "need",
     "use", "way", "possible", "able", "come", "comes", "coming", "happen", "happens",
     "happened", "work", "works", "mean", "means", "make", "try", "let", "help", "going",
     "got", "getting", "yet", "still", "hi", "hello", "thanks", "thank"]
)  # fmt: skip
STOP_WORDS: Final = (ENGLISH_STOP_WORDS - _MEANINGFUL) | _ASKING
MIN_IDF: Final = 0.1
_CITATION = re.compile(r"\[\d+\]")
# A word, with any clitic ("hasn't", "bank's", "I'm") split off: the clitics are dropped.
_WORD = re.compile(r"([A-Za-z0-9]+)(?:'(?:s|t|re|ve|ll|d|m))?\b", re.IGNORECASE)


@lru_cache(maxsize=1)
def _analyzer() -> tantivy.TextAnalyzer:
    return build_analyzer()


@lru_cache(maxsize=8192)
def _analyse(word: str) -> tuple[str, ...]:
    return tuple(_analyzer().analyze(word))


def question_terms(question: str) -> list[str]:
    """The question's content terms, analysed as keyword search does, in order, once each."""
    terms = (t for w in _words(question) if w not in STOP_WORDS for t in _analyse(w))
    return list(dict.fromkeys(terms))


def _words(text: str) -> list[str]:
    """Lower-case words without clitics; "hasn't", "don't", "can't" are dropped whole
    (function words, whatever the negation means to the question)."""
    matches = _WORD.finditer(text.replace("\u2019", "'"))  # typographic apostrophes too
    return [m.group(1).lower() for m in matches if not m.group(0).lower().endswith("'t")]


def evidence_terms(texts: Iterable[str]) -> set[str]:
    """Every analysed term of `texts` (function words included: they cost nothing);
    citation markers ("[1]") are not evidence of a "1" in the question."""
    return {t for text in texts for w in _words(_CITATION.sub(" ", text)) for t in _analyse(w)}


@dataclass(frozen=True, slots=True)
class Coverage:
    value: float  # in [0, 1]; 1.0 when the question has no content terms
    missing: tuple[str, ...]  # question terms the evidence lacks, rarest first
    checked: bool = True  # False: not measured (the check did not apply), value 1.0
    required: float = 0.0  # the share the text had to reach (by its passage's cosine)

    def as_trace(self) -> dict[str, object]:
        return {"value": round(self.value, 4), "missing": list(self.missing)}


Counts = tuple[int, dict[str, int]]
"""(number of indexed chunks, {term: chunks holding it}), as `document_frequencies` gives."""


class CoverageCheck:
    """The coverage test of one question, for its answer and any alternative to it.

    It applies where meaning is weak evidence, to text resting on a passage whose cosine
    is under `below` (customers' own words are often none of the knowledge base's, and
    a passage closer in meaning is about the question anyway), and asks more where
    meaning is weaker still: `strict` instead of `minimum` under `strict_below` ("What
    should I do if I lost my phone?" finds the lost-card steps at cosine 0.38 and shares
    "lost" with them). Not at all when `minimum` is 0 or the question has no content
    terms. `count` gives the document frequencies; it is called once, and only when some
    text needs checking.
    """

    def __init__(
        self,
        question: str,
        *,
        minimum: float,
        below: float,
        count: Callable[[Sequence[str]], Counts],
        strict: float = 0.0,
        strict_below: float = 0.0,
    ):
        self.terms = question_terms(question)
        self.minimum = minimum
        self.below = below
        self.strict = strict
        self.strict_below = strict_below
        self._count = count
        self._counts: Counts | None = None

    def required(self, cosine: float) -> float:
        """The share text resting on a passage at `cosine` must reach (0: unchecked)."""
        if self.minimum == 0.0 or not self.terms:
            return 0.0
        need = self.minimum if cosine < self.below else 0.0
        return max(need, self.strict) if cosine < self.strict_below else need

    def of(self, shown: Iterable[str], headings: Iterable[str], cosine: float) -> Coverage:
        """The coverage of the question by `shown` and `headings`, resting on a passage
        at `cosine`; not checked (1.0) where the check does not apply."""
        need = self.required(cosine)
        if need == 0.0:
            return Coverage(1.0, (), checked=False)
        if self._counts is None:
            self._counts = self._count(self.terms)
        documents, frequencies = self._counts
        found = coverage(self.terms, evidence_terms([*shown, *headings]), frequencies, documents)
        return replace(found, required=need)

    def fails(self, covered: Coverage) -> bool:
        return covered.checked and covered.value < covered.required

    def trace(self, covered: Coverage) -> dict[str, object]:
        return {
            **covered.as_trace(),
            "min": covered.required if covered.checked else self.minimum,
            "checked": covered.checked,
            "below": self.below,
            "strict": self.strict,
            "strict_below": self.strict_below,
        }


def coverage(
    terms: Sequence[str], evidence: set[str], frequencies: Mapping[str, int], documents: int
) -> Coverage:
    """IDF-weighted share of `terms` found in `evidence` (see the module docstring).

    `frequencies` maps each term to the number of indexed chunks holding it (absent:
    none), `documents` is the number of indexed chunks.
    """
    if not terms:
        return Coverage(1.0, ())
    weights = {
        t: max(MIN_IDF, math.log((documents + 1) / (frequencies.get(t, 0) + 0.5))) for t in terms
    }
    found = sum(w for t, w in weights.items() if t in evidence)
    missing = sorted((t for t in terms if t not in evidence), key=lambda t: -weights[t])
    return Coverage(found / sum(weights.values()), tuple(missing))
