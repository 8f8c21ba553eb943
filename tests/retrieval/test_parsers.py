"""Parsers on realistic, messy inputs: structure, metadata, and errors that name the problem."""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path

import pytest
from pypdf import PdfWriter

from retrieval.errors import (
    DocumentParseError,
    DocumentTooLargeError,
    EmptyDocumentError,
    UnsupportedFormatError,
)
from retrieval.parsers import (
    SUPPORTED_EXTENSIONS,
    derive_doc_id,
    load_beir_corpus,
    normalize_metadata,
    parse_bytes,
)
from retrieval.types import ParsedDocument, Section

FIXTURES = Path(__file__).parent / "fixtures"


def parse_fixture(name: str) -> list[ParsedDocument]:
    return parse_bytes(name, (FIXTURES / name).read_bytes())


def sections_by_path(doc: ParsedDocument) -> dict[tuple[str, ...], str]:
    return {section.path: section.text for section in doc.sections}


def make_pdf(pages: list[list[str]], *, title: str | None = None) -> bytes:
    """A minimal PDF 1.4 with one Helvetica text line per entry, and a correct xref."""

    def escape(text: str) -> str:
        return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    kids = " ".join(f"{4 + 2 * index} 0 R" for index in range(len(pages)))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    for index, lines in enumerate(pages):
        operators = ["BT", "/F1 12 Tf", "14 TL", "72 720 Td"]
        operators += [f"({escape(line)}) Tj T*" for line in lines]
        stream = "\n".join([*operators, "ET"]).encode("latin-1")
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            b"/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>" % (5 + 2 * index)
        )
        objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream))
    info = ""
    if title is not None:
        objects.append(f"<< /Title ({escape(title)}) >>".encode("latin-1"))
        info = f" /Info {len(objects)} 0 R"
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R{info} >>\n".encode()
    out += b"startxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


FEE_PDF_PAGES = [
    [
        "Fee Schedule for Current Accounts",
        "",
        "The monthly account fee is 4 EUR. It is waived when the",
        "balance stays above 2,000 EUR.",
    ],
    [],
    ["Overdraft interest is 12.9% (EAR)."],
]


# --- Markdown ----------------------------------------------------------------------------


def test_markdown_front_matter_sets_title_id_and_normalised_metadata() -> None:
    [doc] = parse_fixture("premier-savings.md")

    assert doc.title == "Premier Savings Account"
    assert doc.doc_id == "premier-savings"
    assert doc.source == "premier-savings.md"
    assert doc.metadata == {
        "product": "savings",
        "document_type": "fee schedule",
        "effective_from": "2026-01-01",
        "effective_until": "2026-12-31",
        "tags": ["savings", "fees"],
    }
    assert "effective_from" not in doc.text
    assert "---" not in doc.text


def test_markdown_headings_build_nested_section_paths() -> None:
    [doc] = parse_fixture("premier-savings.md")
    sections = sections_by_path(doc)

    assert list(sections) == [
        (),
        ("Premier Savings",),
        ("Premier Savings", "Fees"),
        ("Premier Savings", "Fees", "Waivers"),
        ("Premier Savings", "Interest"),
        ("Closing the account",),
    ]
    assert sections[()] == "Welcome to the Premier Savings account guide."
    assert sections[("Premier Savings", "Fees", "Waivers")].startswith("The monthly fee is waived")
    assert sections[("Closing the account",)] == "You can close the account online at any time."


def test_markdown_renders_tables_lists_links_and_code_as_plain_text() -> None:
    [doc] = parse_fixture("premier-savings.md")
    sections = sections_by_path(doc)

    fees = sections[("Premier Savings", "Fees")].split("\n")
    assert fees[:3] == ["Service | Fee", "Monthly maintenance | 5 EUR", "Paper statement | 2 EUR"]
    assert "No fee for online transfers." in fees
    intro = sections[("Premier Savings",)]
    assert "See our rates page for today's figures." in intro
    assert "https://" not in doc.text
    assert "**" not in doc.text
    assert "rate = base + 0.25" in sections[("Premier Savings", "Interest")]


def test_markdown_title_falls_back_to_first_h1_then_file_stem() -> None:
    [with_h1] = parse_bytes("guide.md", b"Intro text.\n\n# Mortgage Guide\n\nBody.\n")
    [without_h1] = parse_bytes("mortgage-guide.md", b"## Rates\n\nFixed for 5 years.\n")

    assert with_h1.title == "Mortgage Guide"
    assert without_h1.title == "mortgage-guide"
    assert without_h1.sections[0].path == ("Rates",)
    assert with_h1.doc_id is None


def test_markdown_invalid_front_matter_names_the_line() -> None:
    data = b"---\ntitle: Loans\nproduct: [loans\n---\n\n# Loans\n\nText.\n"

    with pytest.raises(DocumentParseError, match=r"loans\.md.*front matter.*YAML.*line"):
        parse_bytes("loans.md", data)


def test_markdown_front_matter_must_be_a_mapping() -> None:
    with pytest.raises(DocumentParseError, match="mapping"):
        parse_bytes("x.md", b"---\n- a\n- b\n---\nText.\n")


def test_markdown_bad_date_in_front_matter_names_file_field_and_value() -> None:
    data = b"---\neffective_from: next spring\n---\nText.\n"

    with pytest.raises(DocumentParseError, match=r"rates\.md: effective_from.*'next spring'"):
        parse_bytes("rates.md", data)


def test_markdown_with_only_front_matter_is_empty() -> None:
    with pytest.raises(EmptyDocumentError, match="no text"):
        parse_bytes("x.md", b"---\ntitle: Nothing here\n---\n\n# Heading only\n")


# --- HTML --------------------------------------------------------------------------------


def test_html_drops_scripts_navigation_and_page_chrome() -> None:
    [doc] = parse_fixture("overdraft.html")

    for noise in ("dataLayer", "font-family", "Accounts", "Site banner", "Privacy"):
        assert noise not in doc.text
    for noise in ("trackPageView", "Enable JavaScript", "editorial note"):
        assert noise not in doc.text


def test_html_headings_paragraphs_lists_and_table_rows() -> None:
    [doc] = parse_fixture("overdraft.html")
    sections = sections_by_path(doc)

    assert doc.title == "Overdraft Terms | Example Bank"
    assert sections[("Overdraft",)] == (
        "An arranged overdraft lets you borrow up to an agreed limit."
    )
    assert sections[("Overdraft", "Costs")].split("\n") == [
        "Item | Rate",
        "Arranged overdraft | 12.9% EAR",
        "Unarranged overdraft | Not offered",
    ]
    fees = sections[("Overdraft", "Costs", "Fees")].split("\n")
    assert fees[0] == "No monthly fee."
    assert "Questions? Call us." in fees


def test_html_meta_tags_become_metadata() -> None:
    [doc] = parse_fixture("overdraft.html")

    assert doc.metadata == {
        "product": "current account",
        "document_type": "terms",
        "effective_from": "2026-03-01",
    }


def test_html_source_newlines_are_whitespace_and_article_headers_are_kept() -> None:
    data = b"""<html><body>
    <header><nav>Menu</nav><h1>Example Bank</h1></header>
    <article>
      <header><h1>Card limits</h1></header>
      <p>Daily limits
         apply to <em>all</em>
         cards.</p>
      <footer>Updated <script>var x = 1;</script>yesterday</footer>
    </article>
    </body></html>"""

    [doc] = parse_bytes("limits.html", data)

    assert doc.title == "Card limits"
    assert doc.sections == (Section(("Card limits",), "Daily limits apply to all cards."),)


def test_html_title_falls_back_to_first_h1_and_honours_declared_charset() -> None:
    data = (
        '<html><head><meta charset="windows-1252"></head><body>'
        "<h1>Caf\xe9 Card</h1><p>Pay at the caf\xe9.</p></body></html>"
    ).encode("cp1252")

    [doc] = parse_bytes("cafe.htm", data)

    assert doc.title == "Café Card"
    assert doc.sections[0].text == "Pay at the café."


# --- plain text --------------------------------------------------------------------------


def test_text_uses_a_short_first_line_as_title_and_unwraps_hard_wrapped_lines() -> None:
    [doc] = parse_fixture("card-replacement.txt")

    assert doc.title == "Card replacement"
    assert len(doc.sections) == 1
    assert doc.sections[0].path == ()
    assert doc.sections[0].text.split("\n") == [
        "If your card is damaged, order a new one in the app. The replacement arrives "
        "within five working days.",
        "- Lost cards are blocked at once.",
        "- Stolen cards must be reported to the police.",
    ]


def test_text_title_is_the_stem_without_a_title_line() -> None:
    [doc] = parse_bytes("Branch Hours.txt", b"Branches open at nine.\nThey close at five.\n")

    assert doc.title == "Branch Hours"
    assert doc.text == "Branches open at nine.\nThey close at five."


# --- PDF ---------------------------------------------------------------------------------


def test_pdf_pages_become_sections_and_first_line_is_the_title() -> None:
    [doc] = parse_bytes("fees.pdf", make_pdf(FEE_PDF_PAGES))

    assert doc.title == "Fee Schedule for Current Accounts"
    assert [section.path for section in doc.sections] == [("Page 1",), ("Page 3",)]
    assert "It is waived when the balance stays above 2,000 EUR." in doc.sections[0].text
    assert doc.sections[1].text == "Overdraft interest is 12.9% (EAR)."


def test_pdf_title_comes_from_document_metadata() -> None:
    [doc] = parse_bytes("x.pdf", make_pdf(FEE_PDF_PAGES, title="Fee Schedule 2026"))

    assert doc.title == "Fee Schedule 2026"


@pytest.mark.parametrize("keep", [0.5, 0.9])
def test_truncated_pdf_is_a_parse_error(keep: float) -> None:
    data = make_pdf(FEE_PDF_PAGES)

    with pytest.raises(DocumentParseError, match=r"fees\.pdf could not be read as a PDF: .+"):
        parse_bytes("fees.pdf", data[: int(len(data) * keep)])


def test_file_that_is_not_a_pdf_is_a_parse_error() -> None:
    with pytest.raises(DocumentParseError, match=r"could not be read as a PDF: .*PDF header"):
        parse_bytes("report.pdf", b"<html>not a pdf</html>\n%%EOF\n")


def test_pdf_with_a_corrupt_body_is_a_parse_error() -> None:
    data = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 9 0 R\nendobj\n" + b"\x00garbage" * 50
    data += b"\nstartxref\n123456\n%%EOF\n"

    with pytest.raises(DocumentParseError, match=r"could not be read as a PDF: \S"):
        parse_bytes("report.pdf", data)


def test_password_protected_pdf_is_a_parse_error() -> None:
    writer = PdfWriter()
    writer.add_blank_page(width=612, height=792)
    writer.encrypt(user_password="secret", algorithm="RC4-128")
    buffer = io.BytesIO()
    writer.write(buffer)

    with pytest.raises(DocumentParseError, match=r"could not be read as a PDF: .*password"):
        parse_bytes("locked.pdf", buffer.getvalue())


def test_pdf_without_text_says_ocr_is_not_supported() -> None:
    writer = PdfWriter()
    writer.add_blank_page(width=612, height=792)
    buffer = io.BytesIO()
    writer.write(buffer)

    with pytest.raises(EmptyDocumentError, match="OCR is not supported"):
        parse_bytes("scan.pdf", buffer.getvalue())


# --- CSV ---------------------------------------------------------------------------------


def test_csv_with_bom_quoted_commas_and_multiline_cells() -> None:
    docs = parse_fixture("faq.csv")

    assert [doc.doc_id for doc in docs] == ["faq-1", "faq-2"]
    assert [doc.source for doc in docs] == ["faq.csv#row=1", "faq.csv#row=2"]
    assert docs[0].title == "Card lost"
    assert docs[0].text == "If your card is lost, freeze it in the app, then call us."
    assert docs[1].title == "Fees, charges and limits"
    assert docs[1].text == "Daily ATM limit is 500 EUR.\nThe limit can be raised in the app."
    assert docs[0].metadata == {
        "product": "cards",
        "document_type": "faq",
        "effective_from": "2026-01-01",
    }
    assert docs[1].metadata == {"product": "cards", "document_type": "faq"}


def test_csv_with_semicolons_and_case_insensitive_columns() -> None:
    data = "Question;Answer;Segment\nCan I pay by phone?;Yes, with the app.;retail\n"

    [doc] = parse_bytes("faq.csv", data.encode())

    assert doc.title == "Can I pay by phone?"
    assert doc.text == "Yes, with the app."
    assert doc.metadata == {"Segment": "retail"}


def test_csv_row_without_text_names_the_row_and_line() -> None:
    data = b'id,title,text\n1,A,"first, with comma"\n2,B,\n'

    with pytest.raises(DocumentParseError, match=r"faq\.csv row 2 \(line 3\) has no text"):
        parse_bytes("faq.csv", data)


def test_csv_without_text_column_names_the_columns_found() -> None:
    data = b"id,heading,category\n1,A,loans\n"

    with pytest.raises(DocumentParseError, match="no text column; found columns: id, heading"):
        parse_bytes("faq.csv", data)


def test_csv_row_with_extra_fields_is_an_error() -> None:
    with pytest.raises(DocumentParseError, match=r"row 1 .*more fields than the header"):
        parse_bytes("faq.csv", b"title,text\nA,B,C\n")


def test_csv_in_latin_1_asks_for_utf_8() -> None:
    data = "title,text\nCafé,Pay at the café.\n".encode("latin-1")

    with pytest.raises(DocumentParseError, match=r"faq\.csv is not UTF-8 .*line 2.*UTF-8"):
        parse_bytes("faq.csv", data)


def test_csv_with_header_only_is_empty() -> None:
    with pytest.raises(EmptyDocumentError, match="no rows"):
        parse_bytes("faq.csv", b"\xef\xbb\xbfid,text\n")


# --- JSON Lines and JSON -----------------------------------------------------------------


def test_jsonl_records_map_fields_and_skip_blank_lines() -> None:
    docs = parse_fixture("faq.jsonl")

    assert [doc.source for doc in docs] == ["faq.jsonl#line=1", "faq.jsonl#line=3"]
    assert docs[0].doc_id == "q1"
    assert docs[0].title == "How do I reset my PIN?"
    assert docs[0].text == "Open the app and choose Cards, then Reset PIN."
    assert docs[0].metadata == {"product": "cards"}
    assert docs[1].doc_id == "q2"
    assert docs[1].metadata == {"branch": "Main Street"}


def test_jsonl_broken_line_names_line_number_and_json_error() -> None:
    data = (FIXTURES / "faq.jsonl").read_bytes() + b'{"id": "q3", "text": "unterminated\n'

    with pytest.raises(DocumentParseError, match=r"faq\.jsonl line 4 is not valid JSON: .+"):
        parse_bytes("faq.jsonl", data)


def test_jsonl_line_that_is_not_an_object() -> None:
    with pytest.raises(DocumentParseError, match="line 2 is not a JSON object"):
        parse_bytes("x.jsonl", b'{"text": "a"}\n["text", "b"]\n')


def test_jsonl_record_without_text_names_the_line() -> None:
    data = b'{"text": "ok"}\n{"title": "No body", "body": "  "}\n'

    with pytest.raises(DocumentParseError, match=r"x\.jsonl line 2 has no text; expected .*body"):
        parse_bytes("x.jsonl", data)


def test_json_array_and_single_object() -> None:
    array = [{"id": 7, "name": "Loans", "content": "Rates from 3%."}, {"body": "Second."}]

    docs = parse_bytes("kb.json", json.dumps(array).encode())
    [single] = parse_bytes("one.json", b'{"text": "Only one.", "doc_type": "Policy"}')

    assert [(d.doc_id, d.title, d.text) for d in docs] == [
        ("7", "Loans", "Rates from 3%."),
        (None, "", "Second."),
    ]
    assert [d.source for d in docs] == ["kb.json#row=1", "kb.json#row=2"]
    assert single.source == "one.json"
    assert single.metadata == {"document_type": "policy"}


def test_invalid_json_names_line_and_column() -> None:
    with pytest.raises(DocumentParseError, match=r"kb\.json is not valid JSON: .*line 3"):
        parse_bytes("kb.json", b'[\n {"text": "a"},\n {"text": }\n]')


def test_json_text_must_be_a_string() -> None:
    with pytest.raises(DocumentParseError, match="record 1: the text field 'text' must be"):
        parse_bytes("kb.json", b'[{"text": ["a", "b"]}]')


# --- dispatch and limits -----------------------------------------------------------------


@pytest.mark.parametrize("data", [b"", b"  \n\t\n", b"\xef\xbb\xbf \n"])
@pytest.mark.parametrize("name", ["a.md", "a.txt", "a.csv", "a.jsonl", "a.pdf", "a.html"])
def test_empty_input_is_an_empty_document(name: str, data: bytes) -> None:
    with pytest.raises(EmptyDocumentError):
        parse_bytes(name, data)


def test_too_large_input_names_the_limit_in_mb() -> None:
    with pytest.raises(DocumentTooLargeError, match=r"over the 1 MB upload limit"):
        parse_bytes("big.txt", b"a" * (1024 * 1024 + 1), max_bytes=1024 * 1024)


def test_unsupported_extension_lists_supported_types() -> None:
    with pytest.raises(UnsupportedFormatError, match=r"\.docx.*Supported types: .*\.pdf") as info:
        parse_bytes("contract.docx", b"PK\x03\x04")

    for extension in SUPPORTED_EXTENSIONS:
        assert extension in str(info.value)


def test_content_type_is_used_when_the_extension_is_unknown() -> None:
    [doc] = parse_bytes("upload", b"# Loans\n\nText.", content_type="text/markdown; charset=utf-8")
    [by_extension] = parse_bytes("notes.txt", b"# Not a heading", content_type="text/markdown")

    assert doc.sections[0].path == ("Loans",)
    assert by_extension.text == "# Not a heading"


# --- metadata, ids, BEIR -----------------------------------------------------------------


def test_normalize_metadata_aliases_case_and_dates() -> None:
    meta = {
        "Product": "  Premier  Savings ",
        "doc_type": "FAQ",
        "effective_from": dt.datetime(2026, 1, 31, 9, 30),
        "effective_until": "March 1, 2026",
        "published": dt.date(2025, 12, 1),
        "owner": "Retail",
    }

    assert normalize_metadata(meta) == {
        "product": "premier savings",
        "document_type": "faq",
        "effective_from": "2026-01-31",
        "effective_until": "2026-03-01",
        "published": "2025-12-01",
        "owner": "Retail",
    }


def test_normalize_metadata_prefers_the_canonical_key_and_drops_empty_dates() -> None:
    meta = {"type": "guide", "document_type": "Terms", "effective_from": "", "x": None}

    assert normalize_metadata(meta) == {"document_type": "terms", "x": None}


@pytest.mark.parametrize(
    "value", ["2026-01-01", "2026-01-01T10:00:00Z", "2026/01/01", "1 January 2026", "Jan 1, 2026"]
)
def test_normalize_metadata_reads_common_date_forms(value: str) -> None:
    assert normalize_metadata({"effective_from": value}) == {"effective_from": "2026-01-01"}


def test_normalize_metadata_unparsable_date_names_field_and_value() -> None:
    with pytest.raises(DocumentParseError, match="effective_until: cannot read '31/02/2026'"):
        normalize_metadata({"effective_until": "31/02/2026"})


def test_normalize_metadata_rejects_an_inverted_validity_range() -> None:
    with pytest.raises(DocumentParseError, match=r"effective_until \(2025-01-01\) is before"):
        normalize_metadata({"effective_from": "2026-01-01", "effective_until": "2025-01-01"})


def test_record_dates_are_validated_with_the_record_position() -> None:
    data = b'{"text": "a"}\n{"text": "b", "effective_from": "soon"}\n'

    with pytest.raises(DocumentParseError, match=r"x\.jsonl line 2: effective_from"):
        parse_bytes("x.jsonl", data)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("Fee Schedule 2026.pdf", "fee-schedule-2026"),
        ("docs/Überweisung_Limits.md", "uberweisung-limits"),
        ("faq.csv#row=3", "faq-row-3"),
        ("C:\\Users\\ana\\Card FAQ.txt", "card-faq"),
    ],
)
def test_derive_doc_id_slugs_the_stem(source: str, expected: str) -> None:
    assert derive_doc_id(source) == expected


def test_derive_doc_id_without_ascii_letters_is_a_stable_hash() -> None:
    first = derive_doc_id("料金表.pdf")

    assert first.startswith("doc-")
    assert first == derive_doc_id("料金表.pdf") != derive_doc_id("手数料.pdf")


def test_load_beir_corpus(tmp_path: Path) -> None:
    lines = [
        {"_id": "d1", "title": "", "text": "Wire transfers take one day.", "metadata": {"k": 1}},
        {"_id": 2, "title": "Cards", "text": "Freeze lost cards.", "class": "cards"},
    ]
    (tmp_path / "corpus.jsonl").write_text(
        "\n".join(json.dumps(line) for line in lines) + "\n\n", encoding="utf-8"
    )

    docs = list(load_beir_corpus(tmp_path))

    assert [(d.doc_id, d.title, d.text) for d in docs] == [
        ("d1", "", "Wire transfers take one day."),
        ("2", "Cards", "Freeze lost cards."),
    ]
    assert docs[0].metadata == {"k": 1}
    assert docs[1].metadata == {"class": "cards"}
    assert docs[1].source == "corpus.jsonl#line=2"


def test_load_beir_corpus_bad_line_names_the_line(tmp_path: Path) -> None:
    (tmp_path / "corpus.jsonl").write_text('{"_id": "1", "text": "ok"}\n{"_id": "2", "text"\n')

    with pytest.raises(DocumentParseError, match=r"corpus\.jsonl line 2 is not valid JSON"):
        list(load_beir_corpus(tmp_path))


def test_load_beir_corpus_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DocumentParseError, match=r"corpus\.jsonl not found"):
        load_beir_corpus(tmp_path)
