"""The learned half of feedback reranking: a linear adapter of the embedding space.

Votes on one question say little about another question unless the two are alike; what
does carry over is how questions of this bank's customers relate to its passages. The
adapter learns that from the votes: a map ``M = I + A`` fitted so that, among each
voted query's retrieved candidates, the passages the votes approved (cited in an
approved answer, or matched to an agent's correction) rank first. It only rescores
candidates; the index and the embedding model stay as they are.

Weight sets are stored in SQL (`reranker_versions`) with their validation metrics,
under a version id that digests what they were trained on (training again on the same
votes and index names the same version); "latest" serves the newest accepted one, and
settings can name any version (rollback) or "off".
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy.orm import Session, sessionmaker

from db import reranker_versions as repo
from db.chunk_lookup import chunk_embeddings
from db.repository import embedding_from_bytes
from feedback.records import TrainingVote, training_votes
from retrieval.types import Embedder, SearchHit, SearchRequest, Vector

log = logging.getLogger(__name__)

ADAPTER_KIND = "adapter-1"
Search = Callable[[SearchRequest, Vector], list[SearchHit]]


@dataclass(frozen=True, slots=True)
class Adapter:
    """A linear map ``M = I + A`` of the embedding space (row vectors: ``x @ M``).

    ``change(q, d) = cos(q M, d M) - cos(q, d)``: how much closer the feedback says a
    passage is to the query than the embedding model thinks.
    """

    version: str
    embedding_model: str
    matrix: npt.NDArray[np.float32]

    def changes(self, query_vector: Any, vectors: Sequence[Vector | None]) -> npt.NDArray[Any]:
        """`change` for each passage vector; 0 where a vector is missing."""
        result = np.zeros(len(vectors))
        q = _unit(np.asarray(query_vector, dtype=np.float32))
        mq = _unit(q @ self.matrix)
        for i, d in enumerate(vectors):
            if d is not None:
                result[i] = float(mq @ _unit(d @ self.matrix)) - float(q @ _unit(d))
        return result


def _unit(vector: npt.NDArray[Any]) -> npt.NDArray[Any]:
    return vector / max(float(np.linalg.norm(vector)), 1e-12)


@dataclass(frozen=True, slots=True)
class AdapterExample:
    """One training query: its candidates (vectors and first-stage scores) and targets.

    `targets` are non-negative weights on the candidates that answer the query, summing
    to 1; `weight` is the vote's weight (rater kind and budget); `group` (the answer's
    conversation, else the answer) decides the train/validation split, so a
    conversation's votes are never on both sides, as in the dataset export. `vote` (the
    answer and rater) and `keys` (the candidates' chunk keys) name what the example was
    built from, for the adapter's version id.
    """

    query: Vector
    candidates: npt.NDArray[np.float32]
    base: npt.NDArray[np.float32]
    targets: npt.NDArray[np.float32]
    weight: float
    group: str = ""
    vote: str = ""
    keys: tuple[int, ...] = ()


def fit_adapter(
    examples: Sequence[AdapterExample],
    *,
    gamma: float,
    reg: float = 0.1,
    epochs: int = 100,
    temperature: float = 0.1,
    lr: float = 0.01,
    seed: int = 13,
) -> npt.NDArray[np.float32]:
    """Fit ``A`` by full-batch Adam on a listwise loss; returns ``M = I + A``.

    Loss: ``sum_e w_e * CE(targets_e, softmax((base_e + gamma * change_e) / temperature))
    / sum_e w_e + reg * ||A||_F^2``, where ``change_e`` is `Adapter.changes` of the
    candidates. The L2 penalty keeps the map near the identity, so a few votes change
    little. Defaults (gamma 2, reg 0.1, 100 epochs, temperature 0.1) were chosen by
    cross-validation on BankFAQs queries.
    """
    import torch

    if not examples:
        raise ValueError("no examples to fit the adapter on")
    torch.manual_seed(seed)
    n, width = len(examples), max(len(e.base) for e in examples)
    dim = int(examples[0].query.shape[0])
    queries = torch.zeros(n, dim)
    cands = torch.zeros(n, width, dim)
    base = torch.full((n, width), -1e4)  # padding: never a likely candidate
    targets = torch.zeros(n, width)
    for i, e in enumerate(examples):
        c = len(e.base)
        queries[i] = torch.from_numpy(np.asarray(e.query, dtype=np.float32))
        cands[i, :c] = torch.from_numpy(e.candidates)
        base[i, :c] = torch.from_numpy(e.base)
        targets[i, :c] = torch.from_numpy(e.targets)
    weights = torch.tensor([e.weight for e in examples], dtype=torch.float32)
    queries = queries / queries.norm(dim=1, keepdim=True).clamp_min(1e-12)
    units = cands / cands.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    original = (queries[:, None, :] * units).sum(-1)
    delta = torch.zeros(dim, dim, requires_grad=True)
    optimizer = torch.optim.Adam([delta], lr=lr)
    for _ in range(epochs):
        mq = queries + queries @ delta
        mq = mq / mq.norm(dim=1, keepdim=True).clamp_min(1e-12)
        mc = cands + cands @ delta
        mc = mc / mc.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        scores = base + gamma * ((mq[:, None, :] * mc).sum(-1) - original)
        log_p = torch.log_softmax(scores / temperature, dim=1)
        loss = -(weights * (targets * log_p).sum(1)).sum() / weights.sum()
        loss = loss + reg * (delta**2).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return np.eye(dim, dtype=np.float32) + delta.detach().numpy().astype(np.float32)


def mean_reciprocal_rank(
    examples: Sequence[AdapterExample], adapter: Adapter | None, gamma: float
) -> float:
    """MRR of the first target among each example's candidates, reranked by `adapter`."""
    if not examples:
        return 0.0
    total = 0.0
    for e in examples:
        scores = e.base.astype(np.float64)
        if adapter is not None:
            scores = scores + gamma * adapter.changes(e.query, list(e.candidates))
        order = np.argsort(-scores, kind="stable")
        ranks = [r for r, j in enumerate(order, start=1) if e.targets[j] > 0]
        total += 1.0 / ranks[0] if ranks else 0.0
    return total / len(examples)


def chosen_version(session: Session, choice: str, embedding_model: str) -> str | None:
    """The id of the adapter `choice` names: "off" (none), "latest" (the newest accepted
    one for `embedding_model`) or a version id (when it exists for that model)."""
    if choice in {"off", "none", ""}:
        return None
    if choice == "latest":
        rows = repo.reranker_version_headers(
            session, kind=ADAPTER_KIND, embedding_model=embedding_model
        )
        return next((vid for vid, _, metrics in rows if metrics.get("accepted")), None)
    rows = repo.reranker_version_headers(session, version_id=choice)
    if not rows:
        log.warning("reranker version %s not found; reranking without an adapter", choice)
        return None
    if rows[0][1] != embedding_model:
        log.warning("reranker %s was trained for %s; not used", choice, rows[0][1])
        return None
    return choice


def load_adapter(
    session: Session, choice: str, embedding_model: str, *, current: Adapter | None = None
) -> Adapter | None:
    """The adapter `choice` names (see `chosen_version`); `current` is returned as is
    when it is still the choice, so refreshing does not reload the weights."""
    version = chosen_version(session, choice, embedding_model)
    if version is None:
        return None
    if current is not None and current.version == version:
        return current
    row = repo.get_reranker_version(session, version_id=version)
    if row is None:
        return None
    matrix = np.frombuffer(row.weights, dtype="<f4").reshape(row.dimension, row.dimension)
    return Adapter(row.id, row.embedding_model, matrix.astype(np.float32))


def _inputs_digest(
    embedding_model: str, params: dict[str, Any], examples: Sequence[AdapterExample]
) -> str:
    """A digest of what an adapter is trained on: the model, the parameters and, per
    example, the vote, its candidates and targets. Not of the fitted weights: those
    differ in the last float bits between identical runs, and the same votes on the same
    index should name the same version."""
    digest = hashlib.sha256(repr((ADAPTER_KIND, embedding_model, sorted(params.items()))).encode())
    lines = sorted(
        repr((e.vote, e.group, e.keys, [round(float(t), 6) for t in e.targets], round(e.weight, 6)))
        for e in examples
    )
    for line in lines:
        digest.update(line.encode())
    return digest.hexdigest()


def _is_validation(group: str, fraction: float, seed: int) -> bool:
    digest = hashlib.sha256(f"{seed}:{group}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def build_examples(
    sessions: sessionmaker[Session],
    embedder: Embedder,
    search: Search,
    votes: Sequence[TrainingVote],
    weight: Callable[[TrainingVote], float],
    *,
    depth: int,
) -> list[AdapterExample]:
    """One example per vote: the first-stage candidates of its query (`search` must not
    rerank) plus its approved chunks, with their stored vectors."""
    pending = [v for v in votes if v.vector is None or v.embedding_model != embedder.name]
    fresh = dict(
        zip(
            [v.answer_id + v.rater for v in pending],
            embedder.embed_documents([v.query for v in pending]) if pending else [],
            strict=True,
        )
    )
    drafts = []
    for vote in votes:
        vector = fresh.get(vote.answer_id + vote.rater)
        if vector is None and vote.vector is not None:
            vector = embedding_from_bytes(vote.vector)
        if vector is not None:
            drafts.append((vote, vector, search(SearchRequest(query=vote.query, k=depth), vector)))
    keys = {h.key for _, _, hits in drafts for h in hits}
    keys |= {key for vote in votes for key, _ in vote.positives}
    with sessions() as session:
        stored = chunk_embeddings(session, keys=keys)
    name = embedder.name
    vectors = {k: embedding_from_bytes(data) for k, (data, m) in stored.items() if m == name}
    examples = []
    for vote, vector, hits in drafts:
        wanted = {k: w for k, w in vote.positives if k in vectors}
        if not wanted:
            continue
        ranked = [(h.key, h.score) for h in hits if h.key in vectors]
        floor = min((s for _, s in ranked), default=0.0)
        ranked += [(k, floor) for k in wanted if k not in {key for key, _ in ranked}]
        targets = np.array([wanted.get(k, 0.0) for k, _ in ranked], dtype=np.float32)
        examples.append(
            AdapterExample(
                query=np.asarray(vector, dtype=np.float32),
                candidates=np.stack([vectors[k] for k, _ in ranked]).astype(np.float32),
                base=np.array([s for _, s in ranked], dtype=np.float32),
                targets=targets / targets.sum(),
                weight=weight(vote),
                group=vote.conversation_id or vote.answer_id,
                vote=f"{vote.answer_id}:{vote.rater}",
                keys=tuple(k for k, _ in ranked),
            )
        )
    return examples


def train_adapter(
    sessions: sessionmaker[Session],
    embedder: Embedder,
    search: Search,
    weight: Callable[[TrainingVote], float],
    *,
    depth: int = 30,
    gamma: float = 2.0,
    reg: float = 0.1,
    epochs: int = 100,
    validation_fraction: float = 0.1,
    seed: int = 13,
    min_examples: int = 20,
    tolerance: float = 0.03,
) -> dict[str, Any]:
    """Fit an adapter on every live vote, validate it, store it; returns its report.

    The adapter is "accepted" (served by "latest") unless it lowers the MRR of the
    held-out votes' approved passages by more than `tolerance`. Some loss is expected:
    those passages were approved because the serving model already ranked them high
    (an adapter that helps new questions moves some of them down a little); a larger
    drop means it unlearned what users approved. Returns ``{"version": None, ...}``
    without storing anything when fewer than `min_examples` votes name approved passages.
    """
    with sessions() as session:
        votes = training_votes(session)
    examples = build_examples(sessions, embedder, search, votes, weight, depth=depth)
    report: dict[str, Any] = {"votes": len(votes), "examples": len(examples), "version": None}
    if len(examples) < min_examples:
        report["reason"] = f"fewer than {min_examples} votes name approved passages"
        return report
    validation = [e for e in examples if _is_validation(e.group, validation_fraction, seed)]
    train = [e for e in examples if not _is_validation(e.group, validation_fraction, seed)]
    params = {"gamma": gamma, "reg": reg, "epochs": epochs, "depth": depth, "seed": seed}
    matrix = fit_adapter(train, gamma=gamma, reg=reg, epochs=epochs, seed=seed)
    version = f"adapter-{_inputs_digest(embedder.name, params, examples)[:12]}"
    adapter = Adapter(version, embedder.name, matrix)
    before = mean_reciprocal_rank(validation, None, gamma)
    after = mean_reciprocal_rank(validation, adapter, gamma)
    metrics = {
        "train_examples": len(train),
        "validation_examples": len(validation),
        "validation_mrr_before": round(before, 4),
        "validation_mrr_after": round(after, 4),
        "accepted": after >= before - tolerance,
    }
    with sessions.begin() as session:
        if not repo.renew_reranker_version(session, version_id=adapter.version):
            repo.save_reranker_version(
                session,
                version_id=adapter.version,
                kind=ADAPTER_KIND,
                embedding_model=embedder.name,
                dimension=int(matrix.shape[0]),
                weights=matrix.astype("<f4").tobytes(),
                params=params,
                metrics=metrics,
            )
    return {**report, "version": adapter.version, "params": params, **metrics}
