"""`teller bench ...`: deterministic benchmarks that print one JSON object."""

from __future__ import annotations

import json
import random
import resource
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bot.settings import Settings
from retrieval.embedded import EmbeddedIndex
from retrieval.errors import DocumentParseError
from retrieval.metrics import evaluate, percentiles
from retrieval.parsers import load_beir_corpus
from retrieval.types import IndexedChunk, RetrievalMode, SearchRequest

if TYPE_CHECKING:
    from bot.runtime import Runtime

WARMUP_QUERIES = 20


def load_beir_queries(
    directory: Path, split: str
) -> tuple[dict[str, str], dict[str, dict[str, int]]]:
    """Queries that have judgements in `qrels/<split>.tsv`, and those judgements."""
    qrels_path = directory / "qrels" / f"{split}.tsv"
    if not qrels_path.exists():
        raise DocumentParseError(
            f"{qrels_path} not found; available splits: "
            + ", ".join(p.stem for p in (directory / "qrels").glob("*.tsv"))
        )
    qrels: dict[str, dict[str, int]] = {}
    with qrels_path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            parts = line.rstrip("\n").split("\t")
            if number == 1 and parts[0] == "query-id":
                continue
            if len(parts) != 3:
                raise DocumentParseError(f"{qrels_path}:{number}: expected 3 tab-separated columns")
            qrels.setdefault(parts[0], {})[parts[1]] = int(parts[2])
    queries: dict[str, str] = {}
    with (directory / "queries.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                record = json.loads(line)
                if record["_id"] in qrels:
                    queries[record["_id"]] = record["text"]
    return queries, {q: r for q, r in qrels.items() if q in queries}


@contextmanager
def _temporary_runtime(base: Settings) -> Iterator[Runtime]:
    from bot.runtime import build_runtime

    with tempfile.TemporaryDirectory(prefix="teller-bench-") as tmp:
        settings = base.model_copy(update={"data_dir": Path(tmp), "database_url": None})
        runtime = build_runtime(settings, migrate=True)
        try:
            yield runtime
        finally:
            runtime.close()


def bench_retrieval(settings: Settings, dataset: Path, split: str = "dev") -> dict[str, Any]:
    """Load a BEIR folder into a fresh index and score bm25, dense and hybrid."""
    queries, qrels = load_beir_queries(dataset, split)
    docs = list(load_beir_corpus(dataset))
    with _temporary_runtime(settings) as runtime:
        t0 = time.perf_counter()
        runtime.knowledge.ingest_documents(docs)
        ingest_s = time.perf_counter() - t0
        systems: dict[str, dict[str, float]] = {}
        modes: tuple[RetrievalMode, ...] = ("bm25", "dense", "hybrid")
        for mode in modes:
            run: dict[str, dict[str, float]] = {}
            for qid, text in queries.items():
                result = runtime.knowledge.search(SearchRequest(query=text, k=10, mode=mode))
                best: dict[str, float] = {}
                for hit in result.hits:  # a document's best chunk stands for it
                    best.setdefault(hit.doc_id, hit.score)
                run[qid] = best
            systems[mode] = evaluate(qrels, run)
        ordered = list(queries.values())
        for text in ordered[:WARMUP_QUERIES]:
            runtime.knowledge.search(SearchRequest(query=text, k=10))
        samples = []
        for text in ordered:
            t = time.perf_counter()
            runtime.knowledge.search(SearchRequest(query=text, k=10))
            samples.append((time.perf_counter() - t) * 1e3)
        return {
            "dataset": dataset.name,
            "split": split,
            "docs": len(docs),
            "chunks": runtime.index.count(),
            "queries": len(queries),
            "systems": systems,
            "fusion": {"method": settings.fusion, "dense_weight": settings.fusion_dense_weight},
            "latency_ms": percentiles(samples),
            "ingest_seconds": round(ingest_s, 1),
        }


_VOCAB_SIZE = 20_000


def _synthetic_text(rng: random.Random, words: list[str], weights: list[float], n: int) -> str:
    return " ".join(rng.choices(words, weights=weights, k=n))


def bench_scale(
    chunks: int, *, dimension: int = 384, seed: int = 7, queries: int = 200
) -> dict[str, Any]:
    """Index `chunks` synthetic chunks (Zipfian words, random unit vectors) and time it.

    Query embedding is excluded: queries are random unit vectors plus synthetic text,
    which isolates the index. RSS is the process's peak resident set size.
    """
    rng = random.Random(seed)
    np_rng = np.random.default_rng(seed)
    words = [f"w{i}" for i in range(_VOCAB_SIZE)]
    weights = [1.0 / (rank + 1) for rank in range(_VOCAB_SIZE)]
    products = ["mortgage", "savings", "checking", "card", "loan"]

    def make(key: int) -> IndexedChunk:
        vector = np_rng.standard_normal(dimension).astype(np.float32)
        vector /= np.linalg.norm(vector)
        return IndexedChunk(
            key=key,
            doc_id=f"doc-{key // 4}",
            version=1,
            ordinal=key % 4,
            title=f"Doc {key // 4}",
            section_path=(),
            text=_synthetic_text(rng, words, weights, 120),
            context="",
            metadata={"product": products[key % len(products)]},
            embedding=vector,
        )

    with tempfile.TemporaryDirectory(prefix="teller-scale-") as tmp:
        index = EmbeddedIndex(Path(tmp) / "index", dimension=dimension).open()
        try:
            t0 = time.perf_counter()
            batch = 5000
            for start in range(0, chunks, batch):
                index.upsert([make(k) for k in range(start, min(chunks, start + batch))])
            index.flush()
            build_s = time.perf_counter() - t0
            qs = [
                (
                    _synthetic_text(rng, words[:5000], weights[:5000], 8),
                    np_rng.standard_normal(dimension).astype(np.float32),
                )
                for _ in range(queries)
            ]
            for text, vec in qs[:WARMUP_QUERIES]:
                index.search(SearchRequest(query=text, k=10), vec / np.linalg.norm(vec))
            samples = []
            for text, vec in qs:
                vec = vec / np.linalg.norm(vec)
                t = time.perf_counter()
                index.search(SearchRequest(query=text, k=10), vec)
                samples.append((time.perf_counter() - t) * 1e3)
            upserts = []
            for i in range(50):
                chunk = make(chunks + i)
                t = time.perf_counter()
                index.upsert([chunk])
                upserts.append((time.perf_counter() - t) * 1e3)
            return {
                "chunks": chunks,
                "search_ms": percentiles(samples),
                "upsert_ms": percentiles(upserts, (50,)),
                "rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                "build_seconds": round(build_s, 1),
            }
        finally:
            index.close()


def bench_answers(settings: Settings, dataset: Path, split: str = "dev") -> dict[str, Any]:
    """Ask every judged query through the full answer pipeline (default generator).

    `citation_hit@1`: share of answered queries whose first citation is a relevant
    document. `grounded_numbers`: share of figures (numbers, amounts, percentages,
    dates) in answers that appear in the full text of the passages they cite.
    """
    from bot.generation.grounding import check_grounding, extract_figures
    from db import repository as repo

    queries, qrels = load_beir_queries(dataset, split)
    docs = list(load_beir_corpus(dataset))
    with _temporary_runtime(settings) as runtime:
        runtime.knowledge.ingest_documents(docs)
        ordered = list(queries.items())
        for _, text in ordered[:WARMUP_QUERIES]:
            runtime.answers.answer(text, channel="api")
        samples: list[float] = []
        answered = abstained = hits_at_1 = 0
        figures_total = figures_grounded = 0
        for qid, text in ordered:
            t = time.perf_counter()
            result = runtime.answers.answer(text, channel="api")
            samples.append((time.perf_counter() - t) * 1e3)
            if result.kind == "abstain":
                abstained += 1
                continue
            answered += 1
            first = result.citations[0] if result.citations else None
            if first is not None and first.doc_id in qrels[qid]:
                hits_at_1 += 1
            keys = [c.chunk_id for c in result.citations if c.chunk_id is not None]
            with runtime.sessions() as session:
                sources = [row.text for row in repo.load_chunks(session, keys=keys)]
            figures = extract_figures(result.text)
            figures_total += len(figures)
            for figure in figures:
                if check_grounding(figure.raw, sources).ok:
                    figures_grounded += 1
        total = len(ordered)
        return {
            "dataset": dataset.name,
            "split": split,
            "queries": total,
            "answered": round(answered / total, 4) if total else 0.0,
            "abstained": round(abstained / total, 4) if total else 0.0,
            "citation_hit@1": round(hits_at_1 / answered, 4) if answered else 0.0,
            "grounded_numbers": (
                round(figures_grounded / figures_total, 4) if figures_total else 1.0
            ),
            "figures_checked": figures_total,
            "generator": runtime.answers.generator.name,
            **runtime.answers.thresholds(),
            "latency_ms": percentiles(samples),
        }
