"""Value types and the `Generator` protocol shared by every answer generator.

A generator turns a question and numbered passages into an answer that cites them
inline as ``[n]``. Every implementation (the extractive composer, a local transformers
model, an OpenAI-compatible endpoint) takes a `GenerationRequest` and returns a
`Generation`; `stream` yields text deltas whose concatenation is exactly the text that
`generate` returns for the same request.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

CITATION_MARKER = re.compile(r"\[\s*\d+(?:\s*[-\u2013,;]\s*\d+)*\s*\]")
"""A citation marker: ``[1]``, ``[2, 3]``, ``[2;3]`` or a range such as ``[1-3]``."""

_MAX_RANGE = 50  # a marker like [1-999999] is garbage, not a request to cite everything


@dataclass(frozen=True, slots=True)
class Passage:
    """A retrieved passage as shown to the generator, numbered for citation.

    `number` is the 1-based index the answer cites as ``[number]``; `chunk_key`, `doc_id`
    and `version` trace it back to the stored chunk; `score` is the retrieval score.
    """

    number: int
    doc_id: str
    version: int
    chunk_key: int
    title: str
    section_path: tuple[str, ...]
    text: str
    score: float
    url: str | None = None

    def __post_init__(self) -> None:
        if self.number < 1:
            raise ValueError("Passage.number is a 1-based citation index")

    @property
    def heading(self) -> str:
        """The title and section path joined by the indexer's separator (U+203A, a single
        right angle quote); a heading equal to the title is left out."""
        parts = [self.title] if self.title else []
        parts += [p for p in self.section_path if p and p.casefold() != self.title.casefold()]
        return " \u203a ".join(parts)


@dataclass(frozen=True, slots=True)
class Turn:
    """One earlier message of the conversation."""

    role: Literal["user", "assistant"]
    text: str


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    """A question, the passages to answer it from (best first) and recent history."""

    question: str
    passages: Sequence[Passage]
    history: Sequence[Turn] = ()

    def __post_init__(self) -> None:
        numbers = [p.number for p in self.passages]
        if len(set(numbers)) != len(numbers):
            raise ValueError(f"passage numbers must be unique, got {numbers}")

    @property
    def max_citation(self) -> int:
        """The highest passage number a citation may refer to (0 without passages)."""
        return max((p.number for p in self.passages), default=0)


@dataclass(frozen=True, slots=True)
class Generation:
    """A generated answer. `text` is empty when the generator abstains.

    `cited` holds the passage numbers the text cites, in order of first citation;
    `generator` and `version` identify what produced it (stored with the answer trace).
    """

    text: str
    cited: tuple[int, ...]
    generator: str
    version: str

    @property
    def abstained(self) -> bool:
        return not self.text.strip()


@runtime_checkable
class Generator(Protocol):
    """Composes a cited answer from passages."""

    @property
    def name(self) -> str:
        """Short kind of generator: ``extractive``, ``transformers``, ``openai``."""
        ...

    @property
    def version(self) -> str:
        """What exactly produced the text (model directory, endpoint model name...)."""
        ...

    def generate(self, request: GenerationRequest) -> Generation:
        """Return the whole answer at once."""
        ...

    def stream(self, request: GenerationRequest) -> Iterator[str]:
        """Yield text deltas; their concatenation is the text `generate` would return."""
        ...


def parse_citations(text: str, max_n: int) -> tuple[int, ...]:
    """Passage numbers cited by ``[n]`` markers in `text`, in order of first appearance.

    Lists (``[2, 3]``) and ranges (``[1-3]``) are expanded; numbers outside
    ``1..max_n`` are dropped, because they cite nothing the generator was shown.
    """
    cited: dict[int, None] = {}
    for marker in CITATION_MARKER.finditer(text):
        for number in _marker_numbers(marker.group()):
            if 1 <= number <= max_n:
                cited.setdefault(number)
    return tuple(cited)


def strip_citations(text: str) -> str:
    """`text` without citation markers (and without the space before each)."""
    return re.sub(r"[ \t]*" + CITATION_MARKER.pattern, "", text)


def _marker_numbers(marker: str) -> Iterator[int]:
    for part in re.split(r"\s*[,;]\s*", marker.strip("[] \t")):
        bounds = [int(b) for b in re.split(r"\s*[-\u2013]\s*", part) if b]
        if len(bounds) == 2 and 0 <= bounds[1] - bounds[0] <= _MAX_RANGE:
            yield from range(bounds[0], bounds[1] + 1)
        else:
            yield from bounds


def trim_deltas(deltas: Iterable[str]) -> Iterator[str]:
    """Re-yield text deltas without leading and trailing whitespace of the whole text.

    Generators return ``text.strip()`` from `generate`; streaming through this keeps
    ``"".join(stream(r)) == generate(r).text``. Whitespace is held back until more text
    follows it, so the last delta never ends with a space or newline.
    """
    started = False
    pending = ""
    for delta in deltas:
        if not started:
            delta = delta.lstrip()
            if not delta:
                continue
            started = True
        stripped = delta.rstrip()
        if not stripped:
            pending += delta
            continue
        yield pending + stripped
        pending = delta[len(stripped) :]
