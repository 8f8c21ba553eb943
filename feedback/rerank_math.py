"""The math of feedback reranking: pure functions, and the settings they read.

Votes on questions similar to a new one (cosine >= `RerankConfig.threshold`) count,
weighted by `similarity_kernel`, by rater kind, by the rater's `budget_factor` and
capped per rater and document by `cap_scale`; `smoothed_delta` turns the evidence into
a bounded score change. `aggregate_evidence` puts the four together;
`feedback.rerank.FeedbackReranker` applies it to every search.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from feedback.records import MemoryVote

DocKey = tuple[str, int]


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
