"""The extractive composer: the default generator, grounded by construction.

It needs no generative model. The answer is made of whole sentences copied from the top
passages, the ones most similar to the question (read under their passage's heading),
each followed by the ``[n]`` of its passage. Wording and numbers are never changed, so
every figure in the answer is in a cited source.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from bot.generation.types import Generation, GenerationRequest, Passage, parse_citations
from retrieval.types import Embedder, Matrix
from retrieval.vector_cache import VectorCache

ALGORITHM_VERSION = "3"
"""Bumped whenever the selection rules change, so stored answers say which rules made them."""

# A sentence ends at . ! or ? (plus closing quotes or brackets) followed by whitespace and
# something that can start a sentence. Decimals ("6.125%") never match: no space follows.
_BOUNDARY = re.compile(r"[.!?][\"'\u201d\u2019)\]]*\s+(?=[\"'\u201c\u2018(\[]?[A-Z0-9$€£])")
# fmt: off
_ABBREVIATIONS = frozenset([
    "mr", "mrs", "ms", "dr", "st", "no", "nos", "vs", "e.g", "i.e", "inc", "ltd", "co",
    "corp", "jr", "sr", "approx", "dept", "est", "fig", "u.s", "u.k", "a.m", "p.m", "jan",
    "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "mt",
    "ave", "blvd", "apt", "ext", "tel", "acct", "min", "max", "ref", "incl", "attn",
])
# fmt: on
# A sentence that opens by pointing back at the one before ("Otherwise the CD renews",
# "Below that balance ...", "We then cancel the card", "The fee is waived ...": which
# fee?) means nothing on its own.
_DEPENDENT = re.compile(
    r"^(?:otherwise|however|also|then|this|that|these|those|it|its|they|their|such"
    r"|if so|if not|in that case|(?:below|above|after|before|under|over) (?:that|this|it)"
    r"|\w+ then|the (?:fee|fees|charge|charges|penalty|rate|rates|limit|account|card|loan"
    r"|balance|transfer|payment)(?! of))\b",
    re.IGNORECASE,
)
_CELL = " | "  # parsers emit one table row per line, cells joined by this
# A sentence of a lower-ranked passage must come twice as close to the best sentence as
# one of the first passage: the retriever put the first passage's section on top.
_OTHER_PASSAGE_MARGIN = 0.5


@lru_cache(maxsize=4096)
def split_sentences(text: str) -> tuple[str, ...]:
    """Split passage text into sentences, whitespace collapsed, wording untouched.

    Every line is at least one sentence (parsers emit one paragraph, list item or table
    row per line). Within a line, a sentence ends at ``.``, ``!`` or ``?`` followed by
    whitespace and an upper-case letter, digit, currency sign or opening quote, unless
    the word before is a known abbreviation (``e.g.``, ``p.m.``, ``Nov.``) or a single
    letter (an initial). A regular expression rather than pysbd: pysbd costs about
    2 ms per 1,000 characters, more than this composer's whole budget besides the
    embeddings. Cached, because the same passages answer many questions.
    """
    sentences: list[str] = []
    for line in text.splitlines():
        line = " ".join(line.split())
        start = 0
        for match in _BOUNDARY.finditer(line):
            word = line[start : match.start()].rsplit(" ", 1)[-1].lower().lstrip("(\"'")
            if word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha()):
                continue
            sentences.append(line[start : match.end()].rstrip())
            start = match.end()
        sentences.append(line[start:])
    return tuple(s for s in sentences if any(c.isalnum() for c in s))


@dataclass(frozen=True, slots=True)
class _Candidate:
    rank: int  # index of the passage in the request (0 = best)
    position: int  # index of the sentence in its passage
    passage: Passage
    text: str
    label: bool = False  # a table's header row: names columns, states nothing

    @property
    def scored_text(self) -> str:
        """What is compared with the question: the sentence under its passage's heading
        ("Debit and credit card help > My card was lost or stolen: Freezing stops new
        purchases immediately."), so a sentence of the section that answers the question
        is not lost for not repeating the question's words."""
        heading = self.passage.heading
        return f"{heading}: {self.text}" if heading else self.text

    @property
    def dependent(self) -> bool:
        return _DEPENDENT.match(self.text) is not None


def _candidates(rank: int, passage: Passage) -> list[_Candidate]:
    sentences = split_sentences(passage.text)
    return [
        _Candidate(
            rank,
            position,
            passage,
            sentence,
            label=_is_header_row(sentences, position),
        )
        for position, sentence in enumerate(sentences)
    ]


def _is_header_row(sentences: Sequence[str], position: int) -> bool:
    """A table row with no row above it and one below: the table's header."""
    return (
        _CELL in sentences[position]
        and (position == 0 or _CELL not in sentences[position - 1])
        and position + 1 < len(sentences)
        and _CELL in sentences[position + 1]
    )


class ExtractiveComposer:
    """`Generator` that answers with the passages' own sentences, cited.

    For the first `max_passages` passages (in the order given, best first) it splits
    the text into sentences, scores each by cosine similarity to the question (the
    embedder's vectors are L2-normalised, so a dot product) of the sentence read under
    its passage's heading, and keeps at most `max_sentences` of them whose score is at
    least `min_similarity`:

    1. the best sentence of the first passage, when it passes the threshold (the
       retriever ranked that passage first, so the answer starts from it);
    2. then the highest-scoring remaining sentences whose score is within
       `relative_margin` of the best sentence's, half that for sentences of the other
       passages (0.2 keeps answers to the point on the demo knowledge base: the weaker
       sentences are about something else),
       skipping repeats (overlapping chunks repeat a sentence, or the part of it
       before or after a chunk boundary: a sentence contained in one already kept).

    A sentence that opens by pointing back ("Otherwise ...", "We then ...") comes with
    the sentences before it up to one that stands alone, or not at all when they do
    not fit; a table's header row is never an answer of its own. The kept sentences
    are ordered by passage rank, then position in the passage, and each is followed by
    ``[n]``. When nothing passes the threshold the text is empty and the caller
    abstains. Sentence vectors are cached (`cache_size` sentences), so passages seen
    before cost one question embedding.
    """

    def __init__(
        self,
        embedder: Embedder,
        *,
        max_sentences: int = 4,
        max_passages: int = 3,
        min_similarity: float = 0.25,
        relative_margin: float = 0.2,
        cache_size: int = 4096,
    ) -> None:
        if max_sentences < 1:
            raise ValueError("max_sentences must be at least 1")
        if max_passages < 1:
            raise ValueError("max_passages must be at least 1")
        if not -1.0 <= min_similarity <= 1.0:
            raise ValueError("min_similarity must be within [-1, 1]")
        if relative_margin < 0:
            raise ValueError("relative_margin must not be negative")
        if cache_size < 0:
            raise ValueError("cache_size must not be negative")
        self._embedder = embedder
        self._max_sentences = max_sentences
        self._max_passages = max_passages
        self._min_similarity = min_similarity
        self._relative_margin = relative_margin
        self._cache = VectorCache(cache_size)

    @property
    def name(self) -> str:
        return "extractive"

    @property
    def version(self) -> str:
        return f"{ALGORITHM_VERSION}+{self._embedder.name}"

    def load(self) -> None:
        """Nothing to load: the embedder is shared and warmed up by its owner."""

    def generate(self, request: GenerationRequest) -> Generation:
        """Compose the answer; empty text when no sentence is similar enough."""
        candidates = [
            candidate
            for rank, passage in enumerate(request.passages[: self._max_passages])
            for candidate in _candidates(rank, passage)
        ]
        if not candidates or not request.question.strip():
            return self._generation("", request)
        vectors = self._vectors([c.scored_text for c in candidates])
        scores = vectors @ self._embedder.embed_query(request.question)
        chosen = self._select(candidates, scores)
        parts = [f"{c.text} [{c.passage.number}]" for c in sorted(chosen, key=_reading_order)]
        return self._generation(" ".join(parts), request)

    def stream(self, request: GenerationRequest) -> Iterator[str]:
        """Yield the composed text word by word (with the whitespace that follows each)."""
        yield from re.findall(r"\S+\s*", self.generate(request).text)

    def _generation(self, text: str, request: GenerationRequest) -> Generation:
        return Generation(
            text=text,
            cited=parse_citations(text, request.max_citation),
            generator=self.name,
            version=self.version,
        )

    def _select(self, candidates: Sequence[_Candidate], scores: np.ndarray) -> list[_Candidate]:
        ranked = [int(i) for i in np.argsort(-scores, kind="stable")]
        eligible = [
            i for i in ranked if scores[i] >= self._min_similarity and not candidates[i].label
        ]
        if not eligible:
            return []
        first = next((i for i in eligible if candidates[i].rank == 0), None)
        best = float(scores[eligible[0]])
        order = [first] if first is not None else []
        order += [
            i for i in eligible if i != first and scores[i] >= best - self._margin(candidates[i])
        ]
        picked: list[int] = []

        def repeated(i: int) -> bool:
            text = candidates[i].text
            return any(text in candidates[j].text or candidates[j].text in text for j in picked)

        for i in order:
            if len(picked) == self._max_sentences:
                break
            if repeated(i):  # also true when already picked (as context of another)
                continue
            group = [i]  # the sentence and the ones before it that it points back to
            # A passage's first sentence stands alone: what it points to is the heading
            # or the question ("What is a HELOC?" "It lets homeowners borrow ...").
            while candidates[group[0]].dependent and candidates[group[0]].position > 0:
                before = group[0] - 1
                if before in picked:
                    break
                if repeated(before):
                    group = []  # what it points back to is shown elsewhere, not before it
                    break
                group.insert(0, before)
            if group and len(picked) + len(group) <= self._max_sentences:
                picked += group
        return [candidates[i] for i in picked]

    def _margin(self, candidate: _Candidate) -> float:
        share = 1.0 if candidate.rank == 0 else _OTHER_PASSAGE_MARGIN
        return self._relative_margin * share

    def _vectors(self, sentences: Sequence[str]) -> Matrix:
        """Sentence vectors, embedding only those not cached, in one batch."""
        return self._cache.vectors(sentences, self._embedder.embed_documents)


def _reading_order(candidate: _Candidate) -> tuple[int, int]:
    return candidate.rank, candidate.position
