"""Feedback-aware reranking: votes on similar past questions move documents up or down.

Two signals, both versioned together in `FeedbackReranker.version` (recorded in every
answer trace) and both switchable by configuration (`RerankConfig`):

1. Similar-question evidence, live: each vote is remembered with its question's
   embedding and the (document, version) pairs it judged (`vote_attributions`). For a
   new query, votes whose question has cosine >= `threshold` count, weighted by
   `similarity_kernel`, by rater kind, by the rater's budget and capped per rater and
   document; `smoothed_delta` turns the evidence into a bounded score change (these
   pure functions and `RerankConfig` are in `feedback.rerank_math`). Votes on another
   version of a document never touch the current one.
2. A learned adapter (`feedback.adapter`): a linear map of the embedding space
   fitted to the votes (which generalises to questions unlike any voted one), stored in
   SQL as a versioned weight set; it rescores the candidates.

`RerankedIndex` wraps any `IndexBackend` so that every search (the `/v1/search` route
and the answer pipeline alike) fetches `depth` candidates, reranks them and cuts to k.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from db import audit
from db import feedback as repo
from db.audit import Actor
from db.chunk_lookup import chunk_embeddings
from db.repository import embedding_from_bytes
from feedback.adapter import Adapter, Search, load_adapter, train_adapter
from feedback.records import MemoryVote, TrainingVote, memory_vote
from feedback.rerank_math import DocKey, RerankConfig, aggregate_evidence, budget_factor
from retrieval.types import Embedder, IndexBackend, IndexedChunk, SearchHit, SearchRequest, Vector

log = logging.getLogger(__name__)

SIGNAL_VERSION = "fb-1"


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

    def train(
        self, search: Search, *, actor: Actor | None = None, **options: Any
    ) -> dict[str, Any]:
        """Fit, validate and store a new adapter from the live votes (`train_adapter`;
        `search` must be the index without reranking), then reload the adapter choice.
        With an `actor`, the training is recorded in the audit log (`reranker.train`)."""
        self.refresh()
        options.setdefault("depth", self.config.depth)
        options.setdefault("gamma", self.config.adapter_weight)
        report = train_adapter(self._sessions, self._embedder, search, self.vote_weight, **options)
        if actor is not None:
            details = {"accepted": report.get("accepted"), "reason": report.get("reason")}
            target = report.get("version")
            audit.record_committed(
                self._sessions, actor, "reranker.train", target=target, details=details
            )
        self.refresh()
        return report

    def _chunk_vectors(self, keys: Sequence[int], model: str) -> dict[int, Vector]:
        missing = [k for k in keys if k not in self._vectors]
        if missing:
            if len(self._vectors) > 50_000:
                self._vectors.clear()
            with self._sessions() as session:
                stored = chunk_embeddings(session, keys=missing)
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
