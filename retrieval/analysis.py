"""Text analysis for BM25: one tantivy analyzer for documents and queries, plus
query-time expansion with the financial synonym groups.

English stop words are removed and words are Snowball-stemmed, so "rates", "rated"
and "rate" match. Synonyms are expanded at query time only (the index stays small
and a synonym list change needs no reindex): when the query contains one phrase of a
group ("APR"), the tokens of the other phrases ("annual percentage rate") are added
with a lower boost, so they help recall without outranking literal matches.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import tantivy

from retrieval.synonyms import synonym_groups

ANALYZER_NAME = "teller_en"
SYNONYM_BOOST = 0.5
_WORDS = re.compile(r"[a-z0-9]+")


def build_analyzer() -> tantivy.TextAnalyzer:
    """Lower-case, ASCII-fold, drop English stop words and very long tokens, stem."""
    return (
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
        .filter(tantivy.Filter.remove_long(40))
        .filter(tantivy.Filter.lowercase())
        .filter(tantivy.Filter.ascii_fold())
        .filter(tantivy.Filter.stopword("english"))
        .filter(tantivy.Filter.stemmer("english"))
        .build()
    )


@dataclass(frozen=True, slots=True)
class WeightedTerm:
    term: str
    boost: float


@lru_cache(maxsize=1)
def _groups() -> tuple[tuple[tuple[str, ...], ...], ...]:
    """Synonym groups as word sequences: (("apr",), ("annual", "percentage", "rate")), ..."""
    return tuple(
        tuple(tuple(_WORDS.findall(phrase.lower())) for phrase in group)
        for group in synonym_groups()
    )


def _contains(words: Sequence[str], phrase: Sequence[str]) -> bool:
    n = len(phrase)
    return n > 0 and any(
        tuple(words[i : i + n]) == tuple(phrase) for i in range(len(words) - n + 1)
    )


def query_terms(analyzer: tantivy.TextAnalyzer, query: str) -> list[WeightedTerm]:
    """Analysed query terms (boost 1.0) plus synonym-expansion terms (boost 0.5).

    Duplicates keep their highest boost; order is first appearance (deterministic).
    """
    weights: dict[str, float] = {}
    for term in analyzer.analyze(query):
        weights[term] = max(weights.get(term, 0.0), 1.0)
    words = _WORDS.findall(query.lower())
    for group in _groups():
        if any(_contains(words, phrase) for phrase in group):
            for phrase in group:
                for term in _analyze_words(analyzer, phrase):
                    weights.setdefault(term, SYNONYM_BOOST)
    return [WeightedTerm(term, boost) for term, boost in weights.items()]


def _analyze_words(analyzer: tantivy.TextAnalyzer, words: Iterable[str]) -> list[str]:
    return list(analyzer.analyze(" ".join(words)))
