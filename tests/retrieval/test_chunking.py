"""Chunking: sizes, whole-sentence overlap, section boundaries, and the context header."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from retrieval.chunking import CONTEXT_SEPARATOR, build_context, chunk_document
from retrieval.parsers import parse_bytes
from retrieval.types import ChunkDraft, ParsedDocument, Section

FIXTURES = Path(__file__).parent / "fixtures"
WORDS = ["card", "account", "transfer", "balance", "statement", "branch", "limit", "fee"]


def sentences(count: int, prefix: str = "Clause") -> list[str]:
    """Distinct sentences of varied length (about 30 to 110 characters)."""
    return [
        f"{prefix} {index} covers the {' and the '.join(WORDS[: 1 + index % 7])} rules."
        for index in range(count)
    ]


def doc_with(*sections: Section, title: str = "Terms") -> ParsedDocument:
    return ParsedDocument(title=title, sections=sections)


def sentence_span(chunk: ChunkDraft, corpus: list[str]) -> range:
    """The run of `corpus` sentences a chunk consists of (asserting it is exactly that)."""
    first = next(i for i, sentence in enumerate(corpus) if chunk.text.startswith(sentence))
    for end in range(first + 1, len(corpus) + 1):
        if " ".join(corpus[first:end]) == chunk.text:
            return range(first, end)
    raise AssertionError(f"chunk is not a run of whole sentences: {chunk.text!r}")


def test_chunks_respect_the_size_and_cover_every_sentence() -> None:
    corpus = sentences(60)
    doc = doc_with(Section(("Fees",), " ".join(corpus)))

    chunks = chunk_document(doc, chunk_size=300, overlap=80)

    assert len(chunks) > 5
    assert all(len(chunk.text) <= 300 for chunk in chunks)
    covered = {i for chunk in chunks for i in sentence_span(chunk, corpus)}
    assert covered == set(range(len(corpus)))


def test_overlap_is_the_longest_run_of_whole_trailing_sentences_within_the_limit() -> None:
    corpus = sentences(60)
    doc = doc_with(Section((), " ".join(corpus)))
    chunk_size, overlap = 300, 120

    spans = [sentence_span(c, corpus) for c in chunk_document(doc, chunk_size=300, overlap=120)]

    carried_any = False
    for previous, current in itertools.pairwise(spans):
        assert previous.start < current.start <= previous.stop  # progress, no gap
        carried = corpus[current.start : previous.stop]
        assert len(" ".join(carried)) <= overlap
        carried_any = carried_any or bool(carried)
        # One more trailing sentence would break the overlap or the size limit.
        if current.start - 1 > previous.start:
            longer = corpus[current.start - 1 : current.stop]
            assert (
                len(" ".join(longer[: len(carried) + 1])) > overlap
                or len(" ".join(longer)) > chunk_size
            )
    assert carried_any


def test_zero_overlap_repeats_nothing() -> None:
    corpus = sentences(30)
    doc = doc_with(Section((), " ".join(corpus)))

    spans = [sentence_span(c, corpus) for c in chunk_document(doc, chunk_size=250, overlap=0)]

    assert [i for span in spans for i in span] == list(range(len(corpus)))


def test_chunks_never_cross_sections_and_keep_their_paths() -> None:
    first, second = sentences(12, "Fee"), sentences(12, "Rate")
    doc = doc_with(
        Section(("Account", "Fees"), " ".join(first)),
        Section(("Account", "Rates"), " ".join(second)),
    )

    chunks = chunk_document(doc, chunk_size=200, overlap=60)

    for chunk in chunks:
        corpus = first if chunk.section_path == ("Account", "Fees") else second
        assert chunk.section_path in {("Account", "Fees"), ("Account", "Rates")}
        sentence_span(chunk, corpus)
    paths = [chunk.section_path for chunk in chunks]
    assert paths == sorted(paths)  # all Fees chunks, then all Rates chunks


def test_ordinals_are_consecutive_over_the_document_and_empty_sections_are_skipped() -> None:
    doc = doc_with(
        Section(("A",), " ".join(sentences(8))),
        Section(("Empty",), ""),
        Section(("Blank",), "  \n \n"),
        Section(("B",), "Short section."),
        Section(("C",), " ".join(sentences(8, "Term"))),
    )

    chunks = chunk_document(doc, chunk_size=150, overlap=40)

    assert [chunk.ordinal for chunk in chunks] == list(range(len(chunks)))
    assert {chunk.section_path for chunk in chunks} == {("A",), ("B",), ("C",)}
    assert ChunkDraft(ordinal=chunks[0].ordinal, section_path=("A",), text=chunks[0].text) in chunks


def test_small_sections_stay_separate_chunks() -> None:
    doc = doc_with(Section(("Fees",), "No fee."), Section(("Limits",), "500 EUR a day."))

    assert chunk_document(doc) == [
        ChunkDraft(0, ("Fees",), "No fee."),
        ChunkDraft(1, ("Limits",), "500 EUR a day."),
    ]


def test_chunking_is_deterministic() -> None:
    doc = doc_with(Section(("X",), " ".join(sentences(40))), Section(("Y",), "Tail text."))

    assert chunk_document(doc, chunk_size=220, overlap=70) == chunk_document(
        doc, chunk_size=220, overlap=70
    )


def test_a_sentence_longer_than_the_chunk_is_split_at_word_boundaries() -> None:
    words = [f"{WORDS[i % len(WORDS)]}{i}" for i in range(120)]
    long_sentence = "The conditions list " + " ".join(words) + "."
    doc = doc_with(Section((), f"Intro sentence. {long_sentence} Final sentence."))

    chunks = chunk_document(doc, chunk_size=100, overlap=30)

    assert all(len(chunk.text) <= 100 for chunk in chunks)
    vocabulary = set(long_sentence.split()) | {"Intro", "sentence.", "Final"}
    for chunk in chunks:
        assert set(chunk.text.split()) <= vocabulary  # no word was cut in two
    # Pieces of a long sentence are never carried over, so nothing is repeated.
    assert " ".join(chunk.text for chunk in chunks) == doc.text
    assert chunks[0].text == "Intro sentence."
    assert chunks[-1].text.endswith(" Final sentence.")


def test_a_word_longer_than_the_chunk_is_cut() -> None:
    doc = doc_with(Section((), "IBAN " + "X" * 130 + " ends here."))

    chunks = chunk_document(doc, chunk_size=50, overlap=10)

    assert all(len(chunk.text) <= 50 for chunk in chunks)
    assert "".join(chunk.text.replace(" ", "") for chunk in chunks) == (
        "IBAN" + "X" * 130 + "endshere."
    )


def test_abbreviations_and_decimals_do_not_end_sentences() -> None:
    text = "Mr. Smith pays 1.5% p.a. on the loan. The rate is fixed, e.g. for 5 yrs. Done."
    doc = doc_with(Section((), text))

    chunks = chunk_document(doc, chunk_size=38, overlap=0)

    assert [chunk.text for chunk in chunks] == [
        "Mr. Smith pays 1.5% p.a. on the loan.",
        "The rate is fixed, e.g. for 5 yrs.",
        "Done.",
    ]


def test_lines_stay_lines_inside_a_chunk() -> None:
    text = "Item | Rate\nArranged overdraft | 12.9% EAR\nNo monthly fee"
    doc = doc_with(Section(("Costs",), text))

    [chunk] = chunk_document(doc)

    assert chunk.text == text


def test_parsed_markdown_chunks_keep_heading_paths() -> None:
    [doc] = parse_bytes("premier-savings.md", (FIXTURES / "premier-savings.md").read_bytes())

    chunks = chunk_document(doc, chunk_size=80, overlap=30)

    waivers = [c for c in chunks if c.section_path == ("Premier Savings", "Fees", "Waivers")]
    assert waivers
    assert all(len(chunk.text) <= 80 for chunk in chunks)
    assert chunks[-1].section_path == ("Closing the account",)


@pytest.mark.parametrize(("chunk_size", "overlap"), [(0, 0), (100, 100), (100, -1)])
def test_invalid_sizes_are_rejected(chunk_size: int, overlap: int) -> None:
    with pytest.raises(ValueError):
        chunk_document(doc_with(Section((), "Text.")), chunk_size=chunk_size, overlap=overlap)


def test_a_very_long_paragraph_is_still_split_into_whole_sentences() -> None:
    corpus = sentences(400)  # about 27,000 characters on one line
    doc = doc_with(Section((), " ".join(corpus)))

    chunks = chunk_document(doc, chunk_size=900, overlap=150)

    covered = {i for chunk in chunks for i in sentence_span(chunk, corpus)}
    assert covered == set(range(len(corpus)))


# --- context header -------------------------------------------------------------------


def test_context_joins_title_and_path_and_adds_short_metadata_in_key_order() -> None:
    metadata = {"product": "savings", "document_type": "fee schedule"}

    context = build_context("Premier Savings", ["Fees"], metadata)

    assert context == f"Premier Savings{CONTEXT_SEPARATOR}Fees (fee schedule, savings)"


def test_context_for_an_untitled_record_is_only_its_metadata() -> None:
    assert build_context("", (), {"class": "loans"}) == "(loans)"
    assert build_context("", (), {}) == ""
    assert build_context("Cards", (), {}) == "Cards"


def test_context_drops_empty_parts_and_a_heading_equal_to_the_title() -> None:
    context = build_context("Premier Savings", ["Premier Savings", " ", "Fees", "Waivers"], {})

    assert context == CONTEXT_SEPARATOR.join(["Premier Savings", "Fees", "Waivers"])


def test_context_skips_ids_dates_urls_numbers_and_long_values() -> None:
    metadata = {
        "id": "faq",
        "url": "onboarding",
        "version": "beta",
        "effective_from": "2026-01-01",
        "published": "1 March 2026",
        "homepage": "https://bank.example/savings",
        "fee": "5.00",
        "ref": "DOC-2026-0042",
        "rank": 3,
        "tags": ["a", "b"],
        "summary": "A very long description that is not a short label at all",
        "audience": "retail customers",
    }

    assert build_context("T", (), metadata) == "T (retail customers)"


def test_context_keeps_at_most_four_distinct_values() -> None:
    metadata = {"e": "five", "d": "four", "c": "three", "b": "Two", "a": "two", "f": "six"}

    assert build_context("T", (), metadata) == "T (two, three, four, five)"
