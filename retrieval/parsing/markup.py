"""Markdown and HTML: headings become `Section` paths, tables become `a | b` lines."""

from __future__ import annotations

import re
from typing import Any

import yaml
from bs4 import BeautifulSoup, NavigableString, Tag
from markdown_it import MarkdownIt
from markdown_it.token import Token

from retrieval.errors import DocumentParseError
from retrieval.parsing.metadata import CANONICAL_FIELDS, METADATA_ALIASES
from retrieval.parsing.text import document, stem
from retrieval.types import ParsedDocument, Section

_HTML_DROPPED = ("script", "style", "nav", "footer", "header", "noscript", "template")
_HTML_HEADINGS = {f"h{level}": level for level in range(1, 7)}
_HTML_BLOCKS = frozenset(
    {
        *("address", "article", "aside", "blockquote", "body", "caption", "dd", "details"),
        *("dialog", "div", "dl", "dt", "fieldset", "figcaption", "figure", "form", "hr"),
        *("html", "li", "main", "ol", "p", "section", "summary", "table", "tbody", "tfoot"),
        *("thead", "ul"),
    }
)
_HTML_META_FIELDS = frozenset((*CANONICAL_FIELDS, *METADATA_ALIASES))
_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?)^(?:---|\.\.\.)[ \t]*$\n?", re.DOTALL | re.MULTILINE)
_TAG = re.compile(r"<!--.*?-->|<[^>]*>", re.DOTALL)


class _SectionBuilder:
    """Collects lines under the current heading path."""

    def __init__(self) -> None:
        self._stack: list[tuple[int, str]] = []
        self._lines: list[str] = []
        self._sections: list[Section] = []
        self.first_h1: str | None = None

    def heading(self, level: int, text: str) -> None:
        text = " ".join(text.split())
        if not text:
            return
        self._flush()
        while self._stack and self._stack[-1][0] >= level:
            self._stack.pop()
        self._stack.append((level, text))
        if level == 1 and self.first_h1 is None:
            self.first_h1 = text

    def line(self, text: str) -> None:
        for part in text.split("\n"):
            part = " ".join(part.split())
            if part:
                self._lines.append(part)

    def finish(self) -> tuple[Section, ...]:
        self._flush()
        return tuple(self._sections)

    def _flush(self) -> None:
        if self._lines:
            path = tuple(text for _, text in self._stack)
            self._sections.append(Section(path, "\n".join(self._lines)))
            self._lines = []


def parse_markdown(name: str, text: str) -> ParsedDocument:
    """A Markdown file (CommonMark and tables); YAML front matter becomes metadata."""
    front: dict[str, Any] = {}
    match = _FRONT_MATTER.match(text)
    if match:
        front = _load_front_matter(name, match.group(1))
        text = text[match.end() :]
    builder = _SectionBuilder()
    parser = MarkdownIt("commonmark").enable("table")
    heading_level: int | None = None
    row: list[str] | None = None
    for token in parser.parse(text):
        if token.type == "heading_open":
            heading_level = int(token.tag[1:])
        elif token.type == "inline":
            content = _inline_text(token)
            if heading_level is not None:
                builder.heading(heading_level, content)
                heading_level = None
            elif row is not None:
                row.append(" ".join(content.split()))
            else:
                builder.line(content)
        elif token.type == "tr_open":
            row = []
        elif token.type == "tr_close" and row is not None:
            builder.line(" | ".join(cell for cell in row if cell))
            row = None
        elif token.type in ("fence", "code_block"):
            builder.line(token.content)
        elif token.type == "html_block":
            builder.line(_TAG.sub(" ", token.content))
    title = front.pop("title", None)
    doc_id = front.pop("id", None) or front.pop("doc_id", None)
    return document(
        name,
        title=str(title).strip() if title else builder.first_h1 or stem(name),
        sections=builder.finish(),
        metadata=front,
        doc_id=str(doc_id) if doc_id is not None else None,
    )


def _load_front_matter(name: str, block: str) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(block)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 2})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise DocumentParseError(
            f"{name}: the front matter is not valid YAML{where}: {problem}"
        ) from exc
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise DocumentParseError(
            f"{name}: the front matter must be a mapping of keys to values, "
            f"not {type(loaded).__name__}."
        )
    return {str(key): value for key, value in loaded.items()}


def _inline_text(token: Token) -> str:
    parts: list[str] = []
    for child in token.children or []:
        if child.type in ("text", "code_inline", "image"):
            parts.append(child.content)
        elif child.type == "softbreak":
            parts.append(" ")
        elif child.type == "hardbreak":
            parts.append("\n")
    return "".join(parts)


def parse_html(name: str, data: bytes) -> ParsedDocument:
    """An HTML page without its chrome (nav, header, footer, scripts); `<meta>` tags
    named like metadata fields become metadata."""
    soup = BeautifulSoup(data, "lxml")
    metadata = {}
    for meta in soup.find_all("meta"):
        key = str(meta.get("name") or "").strip().lower()
        content = meta.get("content")
        if key in _HTML_META_FIELDS and isinstance(content, str):
            metadata[key] = content
    title_tag = soup.find("title")
    title = " ".join(title_tag.get_text(" ").split()) if title_tag else ""
    for tag in soup.find_all(list(_HTML_DROPPED)):
        # A <header> inside an article holds its heading; only page-level ones are chrome.
        if tag.name != "header" or tag.find_parent(["article", "main"]) is None:
            tag.decompose()
    builder = _SectionBuilder()
    root = soup.body or soup
    buffer: list[str] = []
    _walk_html(root, builder, buffer)
    _flush_inline(builder, buffer)
    return document(
        name,
        title=title or builder.first_h1 or stem(name),
        sections=builder.finish(),
        metadata=metadata,
    )


def _walk_html(node: Tag, builder: _SectionBuilder, buffer: list[str]) -> None:
    """Emit block elements as lines; inline text accumulates in `buffer` until the next
    block boundary (HTML source newlines are only whitespace)."""
    for child in node.children:
        if isinstance(child, NavigableString):
            if type(child) is NavigableString:  # skips comments, CDATA, doctypes
                buffer.append(str(child))
            continue
        if not isinstance(child, Tag):
            continue
        tag = child.name
        if tag in _HTML_HEADINGS or tag in ("tr", "pre", "br") or tag in _HTML_BLOCKS:
            _flush_inline(builder, buffer)
        if tag in _HTML_HEADINGS:
            builder.heading(_HTML_HEADINGS[tag], child.get_text(" "))
        elif tag == "tr":
            cells = (" ".join(cell.get_text(" ").split()) for cell in child.find_all(["td", "th"]))
            builder.line(" | ".join(cell for cell in cells if cell))
        elif tag == "pre":
            builder.line(child.get_text())
        else:
            _walk_html(child, builder, buffer)
            if tag in _HTML_BLOCKS:
                _flush_inline(builder, buffer)


def _flush_inline(builder: _SectionBuilder, buffer: list[str]) -> None:
    builder.line(" ".join("".join(buffer).split()))
    buffer.clear()
