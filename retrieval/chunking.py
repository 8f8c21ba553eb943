"""Sentence-aware chunking and the contextual header indexed with each chunk.

Chunks never cross a section boundary. Within a section, text is split into lines (the
parsers emit one paragraph, list item or table row per line) and each line into
sentences with pysbd; whole sentences are packed greedily up to `chunk_size`
characters, and each chunk repeats the trailing sentences of the previous one that fit
within `overlap` characters.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import pysbd

from retrieval.types import ChunkDraft, ParsedDocument

CONTEXT_SEPARATOR = " \u203a "
"""Joins the title and section headings in a context header (a single right angle quote)."""

_CONTEXT_EXCLUDED_KEYS = frozenset(
    {
        *("id", "_id", "doc_id", "source", "url", "link", "title", "text"),
        *("effective_from", "effective_until", "version", "hash"),
    }
)
_CONTEXT_MAX_VALUES = 4
_CONTEXT_MAX_VALUE_CHARS = 40
_NUMBER = re.compile(r"[-+]?[$€£]?\d[\d,.\s]*%?")
_URL = re.compile(r"(?:[a-z][a-z0-9+.-]*://|www\.|mailto:)", re.IGNORECASE)
_MONTH = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?"  # names and abbrevs
_DATE = re.compile(
    rf"\d{{1,2}}\s+{_MONTH},?\s+\d{{4}}|{_MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}}",
    re.IGNORECASE,
)

# pysbd slows down super-linearly on long inputs (about 3 us/char at 2,000 characters,
# 34 us/char at 50,000), so longer lines are cut at a likely sentence end first.
_SEGMENT_WINDOW = 4000
_LIKELY_SENTENCE_END = re.compile(r"[.!?][\"')\]]*\s+(?=[A-Z0-9\"'(\[])")
_segment_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class _Unit:
    """A sentence (or, for an over-long sentence, one piece of it)."""

    text: str
    separator: str  # put before this unit when it follows another one in a chunk
    whole: bool  # False for pieces of a sentence longer than chunk_size


def chunk_document(
    doc: ParsedDocument, *, chunk_size: int = 900, overlap: int = 150
) -> list[ChunkDraft]:
    """Split a document into chunks of at most `chunk_size` characters.

    Chunks stay within one section and keep its path. Sentences are packed whole; a
    sentence longer than `chunk_size` is cut at word boundaries (at characters for a
    single over-long word). Each chunk after the first in a section starts with the
    trailing whole sentences of the previous chunk whose joined length is at most
    `overlap`, and never all of them, so every chunk brings new text. Ordinals run from
    0 over the whole document; empty sections yield nothing. Deterministic.
    """
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    if not 0 <= overlap < chunk_size:
        raise ValueError("overlap must be within [0, chunk_size)")
    drafts: list[ChunkDraft] = []
    for section in doc.sections:
        units = list(_units(section.text, chunk_size))
        for text in _pack(units, chunk_size, overlap):
            drafts.append(ChunkDraft(ordinal=len(drafts), section_path=section.path, text=text))
    return drafts


def build_context(title: str, section_path: Sequence[str], metadata: Mapping[str, Any]) -> str:
    """Build the short header indexed and embedded with each chunk of a document.

    ``CONTEXT_SEPARATOR.join([title, *section_path])`` (empty parts and a heading equal to
    the title left out), then up to four short descriptive metadata values in parentheses,
    in sorted key order: ``"Premier Savings \u203a Fees (fee schedule, savings)"``. A value
    qualifies when it is a string of 1 to 40 characters that is not a date, URL, number
    or id-like token, under a key other than ids, source, links, title, text, validity
    dates, version and hash.
    """
    clean_title = " ".join(title.split())
    parts = [clean_title] if clean_title else []
    for heading in section_path:
        heading = " ".join(heading.split())
        if heading and heading.casefold() != clean_title.casefold():
            parts.append(heading)
    values: list[str] = []
    seen: set[str] = set()
    for key in sorted(metadata, key=str):
        if len(values) == _CONTEXT_MAX_VALUES:
            break
        value = metadata[key]
        if str(key).lower() in _CONTEXT_EXCLUDED_KEYS or not isinstance(value, str):
            continue
        value = " ".join(value.split())
        if _is_descriptive(value) and value.casefold() not in seen:
            seen.add(value.casefold())
            values.append(value)
    header = CONTEXT_SEPARATOR.join(parts)
    if not values:
        return header
    suffix = f"({', '.join(values)})"
    return f"{header} {suffix}" if header else suffix


def _is_descriptive(value: str) -> bool:
    if not 1 <= len(value) <= _CONTEXT_MAX_VALUE_CHARS:
        return False
    if _URL.search(value) or _NUMBER.fullmatch(value) or _DATE.fullmatch(value):
        return False
    # A single token with a digit in it is a code, id, date or hash, not a description.
    return not (" " not in value and any(char.isdigit() for char in value))


@cache
def _segmenter() -> pysbd.Segmenter:
    return pysbd.Segmenter(language="en", clean=False)


def _sentences(line: str) -> list[str]:
    segments: list[str] = []
    for window in _windows(line, _SEGMENT_WINDOW):
        # pysbd keeps per-call state on the segmenter, so calls from threads are serialised.
        with _segment_lock:
            segments.extend(_segmenter().segment(window))
    return [text for text in (" ".join(s.split()) for s in segments) if text]


def _windows(line: str, limit: int) -> Iterator[str]:
    """Cut `line` into pieces of at most `limit` characters, preferably after a likely
    sentence end, else at a space."""
    while len(line) > limit:
        ends = [match.end() for match in _LIKELY_SENTENCE_END.finditer(line, 0, limit)]
        cut = ends[-1] if ends else line.rfind(" ", 0, limit) + 1 or limit
        yield line[:cut]
        line = line[cut:]
    yield line


def _units(text: str, chunk_size: int) -> Iterator[_Unit]:
    separator = ""
    for line in text.split("\n"):
        if not line.strip():
            continue
        for sentence in _sentences(line):
            if len(sentence) <= chunk_size:
                yield _Unit(sentence, separator, whole=True)
            else:
                for index, piece in enumerate(_split_words(sentence, chunk_size)):
                    yield _Unit(piece, separator if index == 0 else " ", whole=False)
            separator = " "
        separator = "\n"


def _split_words(sentence: str, limit: int) -> Iterator[str]:
    """Cut an over-long sentence into pieces of at most `limit` characters at spaces."""
    piece = ""
    for word in sentence.split(" "):
        while len(word) > limit:
            if piece:
                yield piece
                piece = ""
            yield word[:limit]
            word = word[limit:]
        if not piece:
            piece = word
        elif len(piece) + 1 + len(word) <= limit:
            piece = f"{piece} {word}"
        else:
            yield piece
            piece = word
    if piece:
        yield piece


def _joined_length(units: Sequence[_Unit]) -> int:
    if not units:
        return 0
    return sum(len(unit.text) for unit in units) + sum(len(u.separator) for u in units[1:])


def _render(units: Sequence[_Unit]) -> str:
    return units[0].text + "".join(unit.separator + unit.text for unit in units[1:])


def _carry(units: Sequence[_Unit], overlap: int) -> list[_Unit]:
    """The trailing whole sentences of `units` that fit within `overlap` characters,
    never all of `units`."""
    carried: list[_Unit] = []
    for unit in reversed(units[1:]):
        if not unit.whole or _joined_length([unit, *carried]) > overlap:
            break
        carried.insert(0, unit)
    return carried


def _pack(units: Sequence[_Unit], chunk_size: int, overlap: int) -> Iterator[str]:
    current: list[_Unit] = []
    for unit in units:
        if current and _joined_length([*current, unit]) > chunk_size:
            yield _render(current)
            current = _carry(current, overlap)
            while current and _joined_length([*current, unit]) > chunk_size:
                current.pop(0)
        current.append(unit)
    if current:
        yield _render(current)
