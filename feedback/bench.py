"""`teller bench feedback`: simulated users vote, then rankings on held-out queries are scored.

1. The union of the train and eval corpora is ingested once; the state is copied for
   an honest run and a poisoned run.
2. `before`: nDCG@10 of the eval queries through the product search path (the index
   wrapped in `RerankedIndex`, with no votes yet).
3. Replay: every train query is answered by the answer pipeline; a simulated customer
   votes up when a cited document is relevant, down otherwise; on a seeded share
   (`agent_rate`) of the down votes an agent sends a relevant passage as correction.
   Votes go through `FeedbackService` and count at once. Then the adapter is trained
   (as `teller rerank train` does) and `after_rerank` is scored.
4. `after_finetune`: the votes are exported as retrieval triplets (the first
   `triplets_per_query` of each query are kept), `finetune_retriever` trains a new
   embedding model, `switch_embedding_model` re-embeds every chunk into a
   fresh index, the adapter is trained again for the new model (as an operator does
   after switching) and the eval queries are scored (`without_adapter`: before that).
5. `poisoned`: from the honest replay's votes, one hostile customer asks the train
   questions round-robin and sends `hostile_votes` inverted votes; the adapter is
   trained again and the eval queries scored.

Everything is seeded, conversation ids included (the export splits by conversation); the
datasets are read, never copied.
"""

from __future__ import annotations

import json
import random
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.answers.pipeline import AnswerPipeline
from bot.bench import load_beir_queries
from bot.knowledge import KnowledgeService
from bot.settings import Settings
from feedback.capture import FeedbackService, Vote
from feedback.rerank import FeedbackReranker
from feedback.types import ExportFilters
from retrieval.errors import DocumentParseError
from retrieval.metrics import evaluate
from retrieval.parsers import load_beir_corpus
from retrieval.types import IndexBackend, ParsedDocument, SearchRequest

if TYPE_CHECKING:
    from bot.runtime import Runtime

Qrels = dict[str, dict[str, int]]
Progress = Callable[[str], None]


def load_split(directory: Path) -> tuple[dict[str, str], Qrels]:
    """Queries and judgements of a BEIR folder whose `qrels/` holds exactly one split."""
    splits = sorted((directory / "qrels").glob("*.tsv"))
    if len(splits) != 1:
        raise DocumentParseError(
            f"{directory}/qrels must hold exactly one .tsv split, found {len(splits)}"
        )
    return load_beir_queries(directory, splits[0].stem)


def split_beir(
    dataset: Path,
    out: Path,
    *,
    split: str = "dev",
    fraction: float = 0.5,
    seed: int = 13,
    folds: int | None = None,
    fold: int = 0,
) -> dict[str, Any]:
    """Split the queries of one BEIR split in two seeded parts: `out/train` and
    `out/eval`, each a BEIR folder with one qrels file (corpus and queries are
    symlinked, never copied). For developing against `bench feedback` without the
    held-out split.

    `fraction` of the queries go to train. With `folds` (k-fold cross-validation), the
    seeded order is cut into `folds` near-equal parts instead: part `fold` (from 0) is
    eval and the rest train, so the k runs together score every query once.
    """
    if folds is None:
        if not 0.0 < fraction < 1.0:
            raise ValueError("fraction must be between 0 and 1")
    elif folds < 2 or not 0 <= fold < folds:
        raise ValueError("folds must be at least 2 and fold between 0 and folds - 1")
    queries, qrels = load_beir_queries(dataset, split)
    order = sorted(queries)
    random.Random(seed).shuffle(order)
    if folds is None:
        cut = round(len(order) * fraction)
        held = set(order[cut:])
    else:
        held = set(order[round(len(order) * fold / folds) : round(len(order) * (fold + 1) / folds)])
    parts = {"train": sorted(set(order) - held), "eval": sorted(held)}
    for name, ids in parts.items():
        folder = out / name
        (folder / "qrels").mkdir(parents=True, exist_ok=True)
        for file in ("corpus.jsonl", "queries.jsonl"):
            link = folder / file
            if link.is_symlink() or link.exists():
                link.unlink()
            link.symlink_to((dataset / file).resolve())
        lines = ["query-id\tcorpus-id\tscore"]
        lines += [f"{q}\t{d}\t{g}" for q in ids for d, g in sorted(qrels[q].items())]
        (folder / "qrels" / f"{name}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return {
        "dataset": str(dataset),
        "split": split,
        "seed": seed,
        **({"fraction": fraction} if folds is None else {"folds": folds, "fold": fold}),
        **{name: {"dir": str(out / name), "queries": len(ids)} for name, ids in parts.items()},
    }


def corpus_union(*directories: Path) -> list[ParsedDocument]:
    """The documents of every corpus, each id once (the first folder's copy wins)."""
    seen: dict[str, ParsedDocument] = {}
    for directory in directories:
        for doc in load_beir_corpus(directory):
            seen.setdefault(doc.doc_id or doc.source, doc)
    return list(seen.values())


@dataclass
class Stack:
    """The product's runtime, built as `teller serve` builds it (the reranker around the
    index), and the `FeedbackService` the feedback routes use (refreshing it)."""

    runtime: Runtime
    feedback: FeedbackService

    @property
    def knowledge(self) -> KnowledgeService:
        return self.runtime.knowledge

    @property
    def answers(self) -> AnswerPipeline:
        return self.runtime.answers

    @property
    def reranker(self) -> FeedbackReranker:
        return self.runtime.reranker

    @property
    def inner(self) -> IndexBackend:
        """The index without reranking (what adapter training searches)."""
        return self.runtime.index.inner

    def close(self) -> None:
        self.runtime.close()


def open_stack(settings: Settings) -> Stack:
    """Open the runtime of `settings` (its data dir's recorded model switch included)."""
    from bot.api.routes.feedback import build_feedback_service
    from bot.runtime import build_runtime

    runtime = build_runtime(settings, migrate=True)
    return Stack(runtime, build_feedback_service(runtime))


@contextmanager
def opened(settings: Settings) -> Iterator[Stack]:
    stack = open_stack(settings)
    try:
        yield stack
    finally:
        stack.close()


def ndcg_at_10(stack: Stack, queries: dict[str, str], qrels: Qrels) -> float:
    """nDCG@10 of `queries` through `KnowledgeService.search` (a document's best chunk)."""
    run: dict[str, dict[str, float]] = {}
    for qid, text in queries.items():
        best: dict[str, float] = {}
        for hit in stack.knowledge.search(SearchRequest(query=text, k=10)).hits:
            best.setdefault(hit.doc_id, hit.score)
        run[qid] = best
    return evaluate(qrels, run, ("ndcg@10",))["ndcg@10"]


def _best_relevant(relevant: dict[str, int]) -> str:
    return sorted(relevant.items(), key=lambda item: (-item[1], item[0]))[0][0]


def replay(
    stack: Stack,
    queries: dict[str, str],
    qrels: Qrels,
    texts: dict[str, str],
    *,
    seed: int,
    agent_rate: float,
) -> dict[str, int]:
    """Answer each train query once and vote as its simulated customer (and, on a
    seeded share of down votes, an agent with a relevant passage); returns counts."""
    rng = random.Random(seed)
    order = sorted(queries)
    rng.shuffle(order)
    counts = {"customer": 0, "agent": 0}
    for number, qid in enumerate(order):
        relevant = {d for d, grade in qrels[qid].items() if grade > 0}
        # A seeded conversation id: the export's train/validation split is by conversation,
        # so random ids would change the fine-tuning data from run to run.
        conversation = f"sim-{seed}-{number}"
        result = stack.answers.answer(queries[qid], conversation_id=conversation, channel="web")
        helpful = any(c.doc_id in relevant for c in result.citations)
        rating = "up" if helpful else "down"
        stack.feedback.vote(result.answer_id, Vote(rating, "customer", f"sim-{number}"))
        counts["customer"] += 1
        if not helpful and relevant and rng.random() < agent_rate:
            passage = texts.get(_best_relevant(qrels[qid]))
            if passage:
                vote = Vote("down", "agent", f"agent-{number % 5}", correction=passage)
                stack.feedback.vote(result.answer_id, vote)
                counts["agent"] += 1
    return counts


def attack(stack: Stack, queries: dict[str, str], qrels: Qrels, *, seed: int, votes: int) -> int:
    """One hostile customer asks the train questions round-robin and votes every answer
    the wrong way (up when no cited document is relevant, down otherwise)."""
    order = sorted(queries)
    random.Random(seed + 1).shuffle(order)
    for number in range(votes if order else 0):
        qid = order[number % len(order)]
        relevant = {d for d, grade in qrels[qid].items() if grade > 0}
        own = stack.answers.answer(
            queries[qid], conversation_id=f"hostile-{seed}-{number}", channel="web"
        )
        helped = any(c.doc_id in relevant for c in own.citations)
        stack.feedback.vote(own.answer_id, Vote("down" if helped else "up", "customer", "hostile"))
    return votes if order else 0


def cap_triplets(source: Path, target: Path, per_query: int) -> Path:
    """The first `per_query` triplets of each query of an export (fine-tuning on CPU
    costs about a second per triplet; one per query keeps the benchmark short)."""
    seen: dict[str, int] = {}
    lines = []
    for line in source.read_text(encoding="utf-8").splitlines():
        query = json.loads(line)["query"]
        if seen.get(query, 0) < per_query:
            seen[query] = seen.get(query, 0) + 1
            lines.append(line)
    target.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return target


def bench_feedback(
    settings: Settings,
    train_dir: Path,
    eval_dir: Path,
    *,
    seed: int = 13,
    agent_rate: float = 0.5,
    hostile_votes: int = 2000,
    epochs: int = 3,
    learning_rate: float = 5e-5,
    triplets_per_query: int = 1,
    loss: str = "symmetric",
    progress: Progress = lambda _: None,
) -> dict[str, Any]:
    """Run the whole benchmark (see the module docstring); returns its JSON object.

    Raises `FinetuneError` at once when `loss` is not a preset of `feedback.finetune.LOSSES`.
    """
    from bot.reindex import switch_embedding_model
    from feedback.finetune import check_loss, finetune_retriever

    check_loss(loss)  # before minutes of replay, not after
    started = time.perf_counter()
    train_queries, train_qrels = load_split(train_dir)
    eval_queries, eval_qrels = load_split(eval_dir)
    docs = corpus_union(eval_dir, train_dir)
    texts = {doc.doc_id or "": doc.text for doc in docs}
    timings: dict[str, float] = {}

    def lap(name: str, since: float) -> float:
        timings[name] = round(time.perf_counter() - since, 1)
        progress(f"{name}: {timings[name]} s")
        return time.perf_counter()

    with tempfile.TemporaryDirectory(prefix="teller-bench-feedback-") as tmp:
        root = Path(tmp)
        base = settings.model_copy(update={"data_dir": root / "base", "database_url": None})
        mark = time.perf_counter()
        with opened(base) as stack:
            stack.knowledge.ingest_documents(docs)
            before = ndcg_at_10(stack, eval_queries, eval_qrels)
        mark = lap("ingest_s", mark)
        honest = base.model_copy(update={"data_dir": root / "honest"})
        shutil.copytree(root / "base", root / "honest", ignore=shutil.ignore_patterns("LOCK"))
        with opened(honest) as stack:
            events = replay(
                stack, train_queries, train_qrels, texts, seed=seed, agent_rate=agent_rate
            )
            mark = lap("replay_s", mark)
            # The poisoned run starts from the same votes (the honest replay is seeded).
            shutil.copytree(
                root / "honest", root / "poisoned", ignore=shutil.ignore_patterns("LOCK")
            )
            adapter = stack.reranker.train(stack.inner.search, seed=seed)
            after_rerank = ndcg_at_10(stack, eval_queries, eval_qrels)
            exported = stack.feedback.export(
                "retrieval", root / "export" / "retrieval.jsonl", ExportFilters(), seed=seed
            )
            mark = lap("rerank_train_s", mark)
        model_dir = root / "model"
        train_file = cap_triplets(
            Path(exported.files["train"]), root / "export" / "capped.jsonl", triplets_per_query
        )
        validation = Path(exported.files["validation"])
        report = finetune_retriever(
            train_file,
            model_dir,
            base_model=Path(settings.embedding_model),
            epochs=epochs,
            learning_rate=learning_rate,
            seed=seed,
            loss=loss,
            validation=validation if exported.counts.get("validation") else None,
        )
        mark = lap("finetune_s", mark)
        switch_embedding_model(honest, model_dir)
        with opened(honest) as stack:  # starts on the switched model and index
            stack.reranker.config = replace(stack.reranker.config, adapter="off")
            finetune_only = ndcg_at_10(stack, eval_queries, eval_qrels)
            # What an operator does after switching: train the adapter for the new model.
            stack.reranker.config = replace(stack.reranker.config, adapter="latest")
            tuned_adapter = stack.reranker.train(stack.inner.search, seed=seed)
            after_finetune = ndcg_at_10(stack, eval_queries, eval_qrels)
        mark = lap("reindex_s", mark)
        poisoned_settings = base.model_copy(update={"data_dir": root / "poisoned"})
        with opened(poisoned_settings) as stack:
            hostile = attack(stack, train_queries, train_qrels, seed=seed, votes=hostile_votes)
            poisoned_adapter = stack.reranker.train(stack.inner.search, seed=seed)
            poisoned = ndcg_at_10(stack, eval_queries, eval_qrels)
        lap("poisoned_s", mark)
    return {
        "before": {"ndcg@10": before},
        "after_rerank": {"ndcg@10": after_rerank},
        "after_finetune": {"ndcg@10": after_finetune, "without_adapter": finetune_only},
        "poisoned": {"ndcg@10": poisoned},
        "feedback_events": sum(events.values()),
        "events": events,
        "hostile_votes": hostile,
        "train": {"dir": str(train_dir), "queries": len(train_queries)},
        "eval": {"dir": str(eval_dir), "queries": len(eval_queries)},
        "docs": len(docs),
        "adapter": {k: adapter.get(k) for k in ("version", "examples", "accepted")},
        "finetuned_adapter": {k: tuned_adapter.get(k) for k in ("version", "accepted")},
        "poisoned_adapter": {k: poisoned_adapter.get(k) for k in ("version", "accepted")},
        "finetune": {
            "loss": report["loss"]["preset"],
            "triplets": report["data"]["triplets"],
            "validation": report["validation"]["triplets"],
            "epochs": epochs,
            "learning_rate": learning_rate,
            "before": report["before"],
            "after": report["after"],
        },
        "seed": seed,
        "agent_rate": agent_rate,
        "seconds": round(time.perf_counter() - started, 1),
        "timings_s": timings,
    }
