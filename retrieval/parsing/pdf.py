"""PDF: one section per page with extractable text; no OCR."""

from __future__ import annotations

import io

from pypdf import PdfReader

from retrieval.errors import DocumentParseError, EmptyDocumentError
from retrieval.parsing.text import document, stem, unwrap
from retrieval.types import ParsedDocument, Section


def parse_pdf(name: str, data: bytes) -> ParsedDocument:
    """A PDF with a text layer, one `Page N` section per page with text."""
    if b"%PDF-" not in data[:1024]:
        raise DocumentParseError(
            f"{name} could not be read as a PDF: it does not start with a PDF header."
        )
    # pypdf is lenient with a missing %%EOF and would return half a document.
    if b"%%EOF" not in data:
        raise DocumentParseError(
            f"{name} could not be read as a PDF: it has no %%EOF end marker, so it was "
            "probably truncated; upload the complete file."
        )
    sections: list[Section] = []
    title = ""
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise DocumentParseError(
                f"{name} could not be read as a PDF: it is password-protected; "
                "remove the password and upload it again."
            )
        if reader.metadata is not None and reader.metadata.title:
            title = " ".join(str(reader.metadata.title).split())
        for number, page in enumerate(reader.pages, start=1):
            page_text = unwrap(page.extract_text() or "")
            if page_text:
                sections.append(Section((f"Page {number}",), page_text))
    except DocumentParseError:
        raise
    except Exception as exc:  # pypdf raises many exception types on malformed input
        raise DocumentParseError(f"{name} could not be read as a PDF: {exc}") from exc
    if not sections:
        raise EmptyDocumentError(
            f"{name} has no extractable text (it may be a scanned image); OCR is not "
            "supported, so upload a PDF with a text layer."
        )
    if not title:
        first_line = sections[0].text.split("\n", 1)[0]
        title = first_line if len(first_line) <= 120 else stem(name)
    return document(name, title=title, sections=tuple(sections))
