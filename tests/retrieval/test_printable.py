"""Control characters in parsed text: removed (NUL) or turned into spaces, ids untouched."""

from __future__ import annotations

import datetime as dt

from retrieval.parsing import has_control_characters, printable, printable_document
from retrieval.types import ParsedDocument, Section


def test_nul_is_dropped_other_controls_separate_words_and_layout_stays() -> None:
    assert printable("12\x00.5% APR") == "12.5% APR"
    assert printable("page one\x0cpage two\x0bthree\x7f") == "page one page two three "
    assert printable("a\tb\nc\r\nd") == "a\tb\nc\r\nd"
    assert printable("Zürich — 3 % · naïve") == "Zürich — 3 % · naïve"


def test_control_characters_are_detected_but_tabs_and_newlines_are_not() -> None:
    assert has_control_characters("id\x00") and has_control_characters("\x1b[31m")
    assert not has_control_characters("plain id-1\twith\nlines")


def test_a_document_is_cleaned_everywhere_but_its_id() -> None:
    doc = ParsedDocument(
        title="Fees\x00",
        sections=(Section(("Fees\x00", "ATM\x0c"), "Out-of-network\x00 ATM: $3"),),
        metadata={
            "product": "check\x00ing",
            "effective_from": dt.date(2026, 1, 1),
            "n": 2,
            "tags": ["a\x00", "b"],
            "nested": {"k\x00": "v\x00"},
        },
        doc_id="fees\x00",
        source="fees\x00.md",
    )
    clean = printable_document(doc)
    assert clean.title == "Fees" and clean.source == "fees.md"
    assert clean.sections == (Section(("Fees", "ATM "), "Out-of-network ATM: $3"),)
    assert clean.metadata == {
        "product": "checking",
        "effective_from": dt.date(2026, 1, 1),
        "n": 2,
        "tags": ["a", "b"],
        "nested": {"k": "v"},
    }
    assert clean.doc_id == "fees\x00"  # refused by ingestion, never silently renamed
