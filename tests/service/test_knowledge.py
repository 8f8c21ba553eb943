"""The knowledge service end to end on real SQLite/PostgreSQL, index and model."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from bot.knowledge import KnowledgeService
from db import repository as repo
from retrieval.embedded import EmbeddedIndex
from retrieval.embedder import SentenceTransformerEmbedder
from retrieval.errors import DocumentNotFoundError
from retrieval.types import Matrix, ParsedDocument, SearchFilters, SearchRequest, Section, Vector


class CountingEmbedder:
    """Delegates to the real model and counts the texts it embeds."""

    def __init__(self, inner: SentenceTransformerEmbedder):
        self.inner = inner
        self.documents_embedded = 0

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    def embed_documents(self, texts: Sequence[str]) -> Matrix:
        self.documents_embedded += len(texts)
        return self.inner.embed_documents(texts)

    def embed_query(self, text: str) -> Vector:
        return self.inner.embed_query(text)


def _doc(doc_id: str, text: str, title: str = "", **metadata: str) -> ParsedDocument:
    return ParsedDocument(
        title=title,
        sections=(Section(path=(), text=text),),
        metadata=metadata,
        doc_id=doc_id,
        source=f"{doc_id}.txt",
    )


@pytest.fixture
def counting(embedder: SentenceTransformerEmbedder) -> CountingEmbedder:
    return CountingEmbedder(embedder)


@pytest.fixture
def service(
    session_factory: sessionmaker[Session], counting: CountingEmbedder, tmp_path: Path
) -> Iterator[KnowledgeService]:
    index = EmbeddedIndex(tmp_path / "index", dimension=counting.dimension).open()
    yield KnowledgeService(session_factory=session_factory, index=index, embedder=counting)
    index.close()


def _top(service: KnowledgeService, query: str, **kw: object) -> list[str]:
    result = service.search(SearchRequest(query=query, k=3, **kw))  # type: ignore[arg-type]
    return [h.doc_id for h in result.hits]


def test_ingest_search_update_delete(service: KnowledgeService, counting: CountingEmbedder) -> None:
    out = service.ingest_documents(
        [
            _doc("wires", "Outgoing international wire transfers cost $45."),
            _doc("cards", "Freeze a lost or stolen card in the mobile app."),
        ]
    )
    assert [o.status for o in out] == ["created", "created"]
    assert _top(service, "how much does an international wire cost")[0] == "wires"

    embedded = counting.documents_embedded
    again = service.ingest_documents(
        [_doc("wires", "Outgoing international wire transfers cost $45.")]
    )
    assert again[0].status == "unchanged"
    assert counting.documents_embedded == embedded  # nothing re-embedded

    updated = service.ingest_documents([_doc("wires", "International wires now cost $50 each.")])
    assert (updated[0].status, updated[0].version) == ("updated", 2)
    hits = service.search(SearchRequest(query="international wire cost", k=5)).hits
    texts = [h.text for h in hits if h.doc_id == "wires"]
    assert texts == ["International wires now cost $50 each."]  # old version gone at once
    assert hits[0].version == 2

    assert service.delete_document("wires") >= 1
    assert "wires" not in _top(service, "international wire cost")
    with pytest.raises(DocumentNotFoundError):
        service.delete_document("wires")


def test_bad_file_in_a_batch_does_not_lose_the_others(service: KnowledgeService) -> None:
    outcomes = service.ingest_files(
        [
            ("fees.md", b"# Fees\n\nPaper statements cost $2 per month.", None),
            ("scan.exe", b"MZ\x90\x00", None),
            ("empty.txt", b"   \n", None),
            ("broken.pdf", b"%PDF-1.4\n1 0 obj <<", None),
        ]
    )
    by_source = {o.source: o for o in outcomes}
    assert by_source["fees.md"].status == "created"
    assert by_source["scan.exe"].error_type == "UnsupportedFormatError"
    assert by_source["empty.txt"].error_type == "EmptyDocumentError"
    assert by_source["broken.pdf"].error_type == "DocumentParseError"
    assert _top(service, "paper statement fee") == ["fees"]


def test_duplicate_ids_in_one_batch_are_reported(service: KnowledgeService) -> None:
    outcomes = service.ingest_documents([_doc("a", "first text"), _doc("a", "second text")])
    assert [o.status for o in outcomes] == ["failed", "created"] or [
        o.status for o in outcomes
    ] == ["created", "failed"]
    assert any("appears twice" in (o.error or "") for o in outcomes)


def test_an_id_with_a_control_character_is_refused_and_the_rest_of_the_batch_lands(
    service: KnowledgeService,
) -> None:
    outcomes = service.ingest_documents(
        [_doc("bad\x00id", "first text"), _doc("good", "second\x00 text")]
    )
    assert [o.status for o in outcomes] == ["failed", "created"]
    assert outcomes[0].error_type == "InvalidDocumentId"
    assert "control characters" in (outcomes[0].error or "")
    (hit,) = service.search(SearchRequest(query="second text", k=1)).hits
    assert (hit.doc_id, hit.text) == ("good", "second text")


def test_filters_apply_to_both_retrievers(service: KnowledgeService) -> None:
    service.ingest_documents(
        [
            _doc(
                "old-rate",
                "The savings APY is 4.00%.",
                product="savings",
                effective_from="2025-01-01",
                effective_until="2025-12-31",
            ),
            _doc(
                "new-rate",
                "The savings APY is 3.50%.",
                product="savings",
                effective_from="2026-01-01",
            ),
            _doc("cd-rate", "The 12 month CD APY is 4.10%.", product="cd"),
        ]
    )
    import datetime as dt

    for mode in ("hybrid", "bm25", "dense"):
        hits = _top(
            service,
            "savings APY",
            mode=mode,
            filters=SearchFilters(product="savings", valid_on=dt.date(2026, 11, 23)),
        )
        assert hits == ["new-rate"], mode


def test_reconcile_repairs_an_index_that_lost_writes(
    session_factory: sessionmaker[Session], counting: CountingEmbedder, tmp_path: Path
) -> None:
    index_dir = tmp_path / "index"
    index = EmbeddedIndex(index_dir, dimension=counting.dimension).open()
    service = KnowledgeService(session_factory=session_factory, index=index, embedder=counting)
    service.ingest_documents([_doc("a", "Mobile check deposits are available next day.")])
    index.close()
    # The index directory is lost entirely (disk replaced, volume not mounted...).
    import shutil

    shutil.rmtree(index_dir)
    embedded = counting.documents_embedded
    index = EmbeddedIndex(index_dir, dimension=counting.dimension).open()
    service = KnowledgeService(session_factory=session_factory, index=index, embedder=counting)
    report = service.reconcile()
    assert report.added == report.total >= 1
    assert counting.documents_embedded == embedded  # rebuilt from stored embeddings
    assert _top(service, "mobile check deposit") == ["a"]
    with session_factory() as session:
        assert repo.live_chunk_keys(session) == index.keys()
    index.close()
