"""Feedback-aware reranking: votes on similar past questions move documents up or down.

Two signals, both versioned together in `FeedbackReranker.version` (recorded in every
answer trace) and both switchable by configuration (`RerankConfig`):

1. Similar-question evidence, live: each vote is remembered with its question's
   embedding and the (document, version) pairs it judged (`vote_attributions`). For a
   new query, votes whose question has cosine >= `threshold` count, weighted by
   `similarity_kernel`, by rater kind, by the rater's budget and capped per rater and
   document; `smoothed_delta` turns the evidence into a bounded score change. Votes
   on another version of a document never touch the current one.
2. A learned adapter (`feedback.adapter`): a linear map of the embedding space
   fitted to the votes (which generalises to questions unlike any voted one), stored in
   SQL as a versioned weight set; it rescores the candidates.

`RerankedIndex` wraps any `IndexBackend` so that every search (the `/v1/search` route
and the answer pipeline alike) fetches `depth` candidates, reranks them and cuts to k.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from db import feedback as repo
from db.repository import embedding_from_bytes
from feedback.adapter import Adapter, Search, load_adapter, train_adapter
from feedback.records import MemoryVote, TrainingVote, memory_vote
from retrieval.types import Embedder, IndexBackend, IndexedChunk, SearchHit, SearchRequest, Vector

log = logging.getLogger(__name__)

SIGNAL_VERSION = "fb-1"
DocKey = tuple[str, int]


# -- the math: pure functions --------------------------------------------------------


def similarity_kernel(similarity: float, *, threshold: float, full: float) -> float:
    """Weight of a past question at cosine `similarity` to the new one.

    ``k(s) = clip((s - threshold) / (full - threshold), 0, 1)``: questions below
    `threshold` (default 0.85) do not count, paraphrases at or above `full` (0.95)
    count fully, and the weight rises linearly in between. Lower thresholds also
    catch sibling questions ("death benefit of plan A" vs "... of plan B"), whose
    answers differ: on BankFAQs 0.75 cost 0.002 nDCG@10 on unseen questions.
    """
    if full <= threshold:
        return 1.0 if similarity >= threshold else 0.0
    return min(1.0, max(0.0, (similarity - threshold) / (full - threshold)))


def budget_factor(votes: int, budget: float) -> float:
    """Share of full weight each vote of a rater with `votes` live votes gets.

    ``min(1, budget / votes)``: a rater's votes together weigh at most `budget`
    ordinary votes (20 for customers, 500 for agents by default), so a rater who sends
    thousands of votes has no more influence than one who sent `budget`.
    """
    return 1.0 if votes <= budget else budget / votes


def cap_scale(positive: float, negative: float, cap: float) -> float:
    """Factor applied to one rater's evidence about one document: ``min(1, cap / (p + n))``.

    A rater counts at most `cap` (1.0 x rater weight) for or against a document,
    however many similar questions they voted on.
    """
    total = positive + negative
    return 1.0 if total <= cap else cap / total


def smoothed_delta(positive: float, negative: float, prior: float) -> float:
    """Smoothed helpfulness in [-1, 1]: ``(p - n) / (p + n + prior)``.

    This is ``2 * (E[theta] - 1/2)`` for the Beta(prior/2 + p, prior/2 + n) posterior of
    a document's helpfulness `theta` under a symmetric Beta(prior/2, prior/2) prior:
    with the default prior 2, one vote gives +-1/3 (a hint), ten agreeing votes 10/12.
    """
    return (positive - negative) / (positive + negative + prior)


@dataclass(frozen=True, slots=True)
class RerankConfig:
    """Reranking settings (`TELLER_FEEDBACK_*`, see `from_settings`).

    `adapter` selects the learned weight set: "latest" (the newest accepted one for the
    embedding model), "off", or a version id (how a bad version is rolled back).
    """

    enabled: bool = True
    depth: int = 30
    threshold: float = 0.85
    full_similarity: float = 0.95
    weight: float = 0.15
    prior: float = 2.0
    agent_weight: float = 2.0
    rater_cap: float = 1.0
    customer_budget: float = 20.0
    agent_budget: float = 500.0
    adapter: str = "latest"
    adapter_weight: float = 2.0
    refresh_seconds: float = 2.0

    def __post_init__(self) -> None:
        if self.depth < 1 or not 0.0 < self.threshold <= 1.0 or self.prior <= 0:
            raise ValueError("depth must be >= 1, threshold in (0, 1] and prior > 0")
        if min(self.weight, self.agent_weight, self.rater_cap, self.adapter_weight) < 0:
            raise ValueError("weights and caps must not be negative")
        if min(self.customer_budget, self.agent_budget) <= 0:
            raise ValueError("rater budgets must be positive")

    def digest(self) -> str:
        """A short hash of the parameters that change rankings (not the adapter choice)."""
        values = {k: v for k, v in asdict(self).items() if k not in {"adapter", "refresh_seconds"}}
        return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:8]

    @classmethod
    def from_settings(cls, settings: Any) -> RerankConfig:
        """Read `feedback_rerank`, `feedback_rerank_depth`, ... from a settings object;
        fields it lacks keep their defaults."""
        names = {
            "enabled": "feedback_rerank",
            "depth": "feedback_rerank_depth",
            "threshold": "feedback_similarity",
            "full_similarity": "feedback_similarity_full",
            "weight": "feedback_weight",
            "prior": "feedback_prior",
            "agent_weight": "feedback_agent_weight",
            "rater_cap": "feedback_rater_cap",
            "customer_budget": "feedback_customer_budget",
            "agent_budget": "feedback_agent_budget",
            "adapter": "feedback_rerank_version",
            "adapter_weight": "feedback_adapter_weight",
        }
        values = {f: getattr(settings, s) for f, s in names.items() if hasattr(settings, s)}
        return cls(**values)


def aggregate_evidence(
    neighbours: Sequence[tuple[float, MemoryVote]],
    rater_votes: Mapping[str, int],
    config: RerankConfig,
) -> dict[DocKey, float]:
    """Smoothed score change per (doc id, version) from the votes on similar questions.

    Each vote's attribution adds ``kernel * rater weight * budget_factor * attribution
    weight`` to the document's positive or negative evidence; each rater's evidence per
    document is scaled by `cap_scale`; the totals go through `smoothed_delta`.
    """
    per_rater: dict[tuple[str, DocKey], list[float]] = {}
    for similarity, vote in neighbours:
        kernel = similarity_kernel(
            similarity, threshold=config.threshold, full=config.full_similarity
        )
        kind_weight = config.agent_weight if vote.rater_kind == "agent" else 1.0
        budget = config.agent_budget if vote.rater_kind == "agent" else config.customer_budget
        base = kernel * kind_weight * budget_factor(rater_votes.get(vote.rater, 1), budget)
        if base <= 0:
            continue
        for doc_id, version, sign, weight in vote.attributions:
            slot = per_rater.setdefault((vote.rater, (doc_id, version)), [0.0, 0.0])
            slot[0 if sign > 0 else 1] += base * weight
    totals: dict[DocKey, list[float]] = {}
    for (rater, doc), (positive, negative) in per_rater.items():
        kind_weight = config.agent_weight if rater.startswith("agent:") else 1.0
        scale = cap_scale(positive, negative, config.rater_cap * kind_weight)
        total = totals.setdefault(doc, [0.0, 0.0])
        total[0] += positive * scale
        total[1] += negative * scale
    return {doc: smoothed_delta(p, n, config.prior) for doc, (p, n) in totals.items()}


# -- votes in memory ------------------------------------------------------------------


class VoteMemory:
    """Live votes with their question vectors, for similarity search with numpy.

    Rows live in a growable matrix; a replaced vote overwrites its row and a withdrawn
    one frees it, so the matrix never needs rebuilding. Not thread-safe by itself.
    """

    def __init__(self, dimension: int):
        self.dimension = dimension
        self._matrix = np.zeros((64, dimension), dtype=np.float32)
        self._votes: list[MemoryVote | None] = []
        self._slots: dict[tuple[str, str, str], int] = {}
        self._free: list[int] = []
        self.rater_votes: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._slots)

    def put(self, vote: MemoryVote, vector: Vector) -> None:
        """Add a vote, or replace the one with the same (answer, rater kind, rater id)."""
        self.remove(vote.key)
        slot = self._free.pop() if self._free else len(self._votes)
        if slot == len(self._votes):
            self._votes.append(None)
            if slot >= len(self._matrix):
                grown = np.zeros((2 * len(self._matrix), self.dimension), dtype=np.float32)
                grown[: len(self._matrix)] = self._matrix
                self._matrix = grown
        norm = float(np.linalg.norm(vector))
        self._matrix[slot] = vector / norm if norm > 0 else vector
        self._votes[slot] = vote
        self._slots[vote.key] = slot
        self.rater_votes[vote.rater] = self.rater_votes.get(vote.rater, 0) + 1

    def remove(self, key: tuple[str, str, str]) -> None:
        """Forget a vote (no-op when unknown)."""
        slot = self._slots.pop(key, None)
        if slot is None:
            return
        vote = self._votes[slot]
        assert vote is not None
        self._votes[slot] = None
        self._matrix[slot] = 0.0
        self._free.append(slot)
        left = self.rater_votes[vote.rater] - 1
        if left:
            self.rater_votes[vote.rater] = left
        else:
            del self.rater_votes[vote.rater]

    def neighbours(self, vector: Vector, threshold: float) -> list[tuple[float, MemoryVote]]:
        """Votes whose question has cosine >= `threshold` with `vector` (unit length)."""
        if not self._slots:
            return []
        similarities = self._matrix[: len(self._votes)] @ np.asarray(vector, dtype=np.float32)
        found = []
        for slot in np.nonzero(similarities >= threshold)[0]:
            vote = self._votes[int(slot)]
            if vote is not None:
                found.append((float(similarities[slot]), vote))
        return found


# -- the reranker ---------------------------------------------------------------------


class FeedbackReranker:
    """`FeedbackSignal` over the votes in SQL, kept in memory and refreshed incrementally.

    `refresh()` applies the vote events written since the last call (the capture
    service calls it after each vote, so feedback counts at once; other replicas pick
    votes up within `refresh_seconds`). Questions embedded by another model than
    `embedder` are embedded again on load.
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        embedder: Embedder,
        config: RerankConfig | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._sessions = sessions
        self._embedder = embedder
        self.config = config or RerankConfig()
        self._clock = clock
        self._lock = threading.RLock()
        self._memory: VoteMemory | None = None
        self._last_event = 0
        self._checked = float("-inf")
        self._adapter: Adapter | None = None
        self._vectors: dict[int, Vector] = {}

    @property
    def version(self) -> str:
        """``fb-1:<config digest>``, plus ``+<adapter version>`` when an adapter is active."""
        base = f"{SIGNAL_VERSION}:{self.config.digest()}"
        return f"{base}+{self._adapter.version}" if self._adapter is not None else base

    @property
    def adapter(self) -> Adapter | None:
        return self._adapter

    def refresh(self) -> None:
        """Apply the votes changed since the last refresh, and reload the adapter choice."""
        with self._lock, self._sessions() as session:
            if self._memory is None:
                self._memory = VoteMemory(self._embedder.dimension)
                self._last_event = repo.last_event_id(session)
                self._load(session, None)
            else:
                self._last_event, changed = repo.changed_since(
                    session, after_event=self._last_event
                )
                if changed:
                    self._load(session, changed)
            adapter = load_adapter(
                session, self.config.adapter, self._embedder.name, current=self._adapter
            )
            if adapter is not self._adapter:
                self._adapter = adapter
                self._vectors.clear()
            self._checked = self._clock()

    def _load(self, session: Session, changed: set[tuple[str, str, str]] | None) -> None:
        assert self._memory is not None
        rows = repo.load_votes(session, keys=changed)
        present = set()
        pending: list[tuple[MemoryVote, str]] = []
        for row, answer in rows:
            vote = memory_vote(row, answer)
            present.add(vote.key)
            if row.question_embedding is not None and row.embedding_model == self._embedder.name:
                self._memory.put(vote, embedding_from_bytes(row.question_embedding))
            else:
                pending.append((vote, answer.rewritten_query or answer.question))
        if pending:  # votes stored under another embedding model
            vectors = self._embedder.embed_documents([text for _, text in pending])
            for (vote, _), vector in zip(pending, vectors, strict=True):
                self._memory.put(vote, vector)
        for key in changed or ():
            if key not in present:
                self._memory.remove(key)

    def deltas(self, query_vector: Vector) -> dict[DocKey, float]:
        """The smoothed helpfulness of each (doc id, version) for this query."""
        vector = np.asarray(query_vector, dtype=np.float32)
        norm = float(np.linalg.norm(vector))
        if norm == 0:
            return {}
        with self._lock:
            if self._memory is None or self._clock() - self._checked >= self.config.refresh_seconds:
                self.refresh()
            assert self._memory is not None
            found = self._memory.neighbours(vector / norm, self.config.threshold)
            return aggregate_evidence(found, self._memory.rater_votes, self.config)

    def vote_weight(self, vote: TrainingVote) -> float:
        """A vote's weight for adapter training: rater kind weight x `budget_factor`."""
        with self._lock:
            if self._memory is None:
                self.refresh()
            assert self._memory is not None
            count = self._memory.rater_votes.get(vote.rater, 1)
        if vote.rater_kind == "agent":
            return self.config.agent_weight * budget_factor(count, self.config.agent_budget)
        return budget_factor(count, self.config.customer_budget)

    def train(self, search: Search, **options: Any) -> dict[str, Any]:
        """Fit, validate and store a new adapter from the live votes (`train_adapter`;
        `search` must be the index without reranking), then reload the adapter choice."""
        self.refresh()
        options.setdefault("depth", self.config.depth)
        options.setdefault("gamma", self.config.adapter_weight)
        report = train_adapter(self._sessions, self._embedder, search, self.vote_weight, **options)
        self.refresh()
        return report

    def _chunk_vectors(self, keys: Sequence[int], model: str) -> dict[int, Vector]:
        missing = [k for k in keys if k not in self._vectors]
        if missing:
            if len(self._vectors) > 50_000:
                self._vectors.clear()
            with self._sessions() as session:
                stored = repo.chunk_embeddings(session, keys=missing)
            for key, (data, chunk_model) in stored.items():
                if chunk_model == model:
                    self._vectors[key] = embedding_from_bytes(data)
        return {k: self._vectors[k] for k in keys if k in self._vectors}

    def adjust(self, query_vector: Any, hits: Sequence[Any]) -> list[Any]:
        """Hits rescored with the feedback signals, best first, ranks renumbered.

        ``score' = score + weight * delta(doc, version) + adapter_weight * adapter
        change``; ties keep the retriever's order.
        """
        if not hits or not self.config.enabled:
            return list(hits)
        deltas = self.deltas(query_vector)
        changes = np.zeros(len(hits))
        adapter = self._adapter
        if adapter is not None and self.config.adapter_weight > 0:
            with self._lock:
                vectors = self._chunk_vectors([h.key for h in hits], adapter.embedding_model)
            changes = adapter.changes(query_vector, [vectors.get(h.key) for h in hits])
        scored = [
            (
                h.score
                + self.config.weight * deltas.get((h.doc_id, h.version), 0.0)
                + self.config.adapter_weight * float(changes[i]),
                i,
                h,
            )
            for i, h in enumerate(hits)
        ]
        scored.sort(key=lambda item: (-item[0], item[1]))
        return [replace(h, score=s, rank=r) for r, (s, _, h) in enumerate(scored, start=1)]


class RerankedIndex:
    """An `IndexBackend` whose searches go through a `FeedbackReranker`.

    Searches fetch `max(k, depth)` candidates, rerank them and return the best k.
    BM25-only searches (no query vector) and a disabled reranker pass straight through.
    Every other method, and any extra one (`reindex`, ...), is the wrapped index's.
    """

    def __init__(self, inner: IndexBackend, reranker: FeedbackReranker):
        self.inner = inner
        self.reranker = reranker

    @property
    def reranker_version(self) -> str | None:
        """What to record in answer traces: None when reranking is off."""
        return self.reranker.version if self.reranker.config.enabled else None

    def search(self, request: SearchRequest, query_vector: Vector | None = None) -> list[SearchHit]:
        if query_vector is None or not self.reranker.config.enabled:
            return self.inner.search(request, query_vector)
        wide = replace(request, k=max(request.k, self.reranker.config.depth))
        hits = self.inner.search(wide, query_vector)
        return self.reranker.adjust(query_vector, hits)[: request.k]

    def upsert(self, chunks: Sequence[IndexedChunk]) -> None:
        self.inner.upsert(chunks)

    def delete(self, keys: Sequence[int]) -> None:
        self.inner.delete(keys)

    def keys(self) -> set[int]:
        return self.inner.keys()

    def count(self) -> int:
        return self.inner.count()

    def flush(self) -> None:
        self.inner.flush()

    def close(self) -> None:
        self.inner.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)
