"""The reranker's math as pure functions: kernel, budgets, caps, smoothing, aggregation."""

from __future__ import annotations

import numpy as np
import pytest

from feedback.records import MemoryVote, vote_attributions
from feedback.rerank import VoteMemory
from feedback.rerank_math import (
    RerankConfig,
    aggregate_evidence,
    budget_factor,
    cap_scale,
    similarity_kernel,
    smoothed_delta,
)


def test_similarity_kernel_ramps_from_threshold_to_full() -> None:
    assert similarity_kernel(0.74, threshold=0.75, full=0.9) == 0.0
    assert similarity_kernel(0.75, threshold=0.75, full=0.9) == 0.0
    assert similarity_kernel(0.825, threshold=0.75, full=0.9) == pytest.approx(0.5)
    assert similarity_kernel(0.9, threshold=0.75, full=0.9) == 1.0
    assert similarity_kernel(1.0, threshold=0.75, full=0.9) == 1.0
    # A step when full <= threshold.
    assert similarity_kernel(0.8, threshold=0.8, full=0.8) == 1.0
    assert similarity_kernel(0.79, threshold=0.8, full=0.8) == 0.0


def test_budget_factor_limits_a_raters_total_weight() -> None:
    assert budget_factor(1, 20) == 1.0
    assert budget_factor(20, 20) == 1.0
    assert budget_factor(40, 20) == 0.5
    assert budget_factor(5000, 20) * 5000 == pytest.approx(20)


def test_cap_scale_bounds_one_raters_evidence_per_document() -> None:
    assert cap_scale(0.5, 0.0, 1.0) == 1.0
    assert cap_scale(3.0, 1.0, 1.0) == 0.25
    assert cap_scale(0.0, 0.0, 1.0) == 1.0


def test_smoothed_delta_is_the_centred_beta_posterior_mean() -> None:
    assert smoothed_delta(0, 0, 2) == 0.0
    assert smoothed_delta(1, 0, 2) == pytest.approx(1 / 3)  # one vote: a hint
    assert smoothed_delta(0, 1, 2) == pytest.approx(-1 / 3)
    assert smoothed_delta(10, 0, 2) == pytest.approx(10 / 12)
    assert smoothed_delta(5, 5, 2) == 0.0
    # Equals 2 * (posterior mean - 1/2) of Beta(1 + p, 1 + n).
    p, n = 3.0, 1.0
    assert smoothed_delta(p, n, 2) == pytest.approx(2 * ((1 + p) / (2 + p + n) - 0.5))


def test_vote_attributions() -> None:
    cited = [
        {"kind": "passage", "doc_id": "a", "version": 1, "chunk_id": 10},
        {"kind": "passage", "doc_id": "b", "version": 2, "chunk_id": 20},
        {"kind": "rate", "rate_row_id": 4},
    ]
    assert vote_attributions("up", cited, None) == (("a", 1, 1, 1.0), ("b", 2, 1, 0.5))
    assert vote_attributions("down", cited, None) == (("a", 1, -1, 1.0), ("b", 2, -1, 1.0))
    fixed = vote_attributions("down", cited, {"doc_id": "b", "version": 2, "chunk_id": 20})
    assert set(fixed) == {("b", 2, 1, 1.0), ("a", 1, -1, 1.0)}
    assert vote_attributions("down", [], None) == ()


def _vote(rater: str, *attributions: tuple[str, int, int, float]) -> MemoryVote:
    kind = rater.split(":")[0]
    return MemoryVote(("answer", kind, rater), rater, kind, attributions)


def test_aggregate_evidence_weights_caps_and_smooths() -> None:
    config = RerankConfig()
    one = aggregate_evidence([(1.0, _vote("customer:1", ("a", 1, -1, 1.0)))], {}, config)
    assert one == {("a", 1): pytest.approx(-1 / 3)}

    # Votes below the similarity threshold do not count.
    assert aggregate_evidence([(0.5, _vote("customer:1", ("a", 1, -1, 1.0)))], {}, config) == {}

    # An agent counts twice a customer.
    agent = aggregate_evidence([(1.0, _vote("agent:7", ("a", 1, 1, 1.0)))], {}, config)
    assert agent[("a", 1)] == pytest.approx(2 / 4)

    # One rater's many votes on similar questions count as one vote per document...
    many = [(1.0, _vote("customer:h", ("a", 1, 1, 1.0))) for _ in range(50)]
    assert aggregate_evidence(many, {"customer:h": 50}, config)[("a", 1)] == pytest.approx(1 / 3)
    # ...and at most their budget's share: 5000 votes weigh 20 votes in total.
    huge = aggregate_evidence(many[:1], {"customer:h": 5000}, config)
    assert huge[("a", 1)] == pytest.approx(smoothed_delta(20 / 5000, 0, 2))

    # Many different raters move the score towards +-1.
    crowd = [(1.0, _vote(f"customer:{i}", ("a", 1, -1, 1.0))) for i in range(30)]
    assert aggregate_evidence(crowd, {}, config)[("a", 1)] == pytest.approx(-30 / 32)

    # Versions are separate documents.
    mixed = [
        (1.0, _vote("customer:1", ("a", 1, -1, 1.0))),
        (1.0, _vote("customer:2", ("a", 2, 1, 1.0))),
    ]
    result = aggregate_evidence(mixed, {}, config)
    assert result[("a", 1)] < 0 < result[("a", 2)]


def test_config_digest_and_settings() -> None:
    assert RerankConfig().digest() == RerankConfig(adapter="off").digest()
    assert RerankConfig().digest() != RerankConfig(weight=0.3).digest()

    class FakeSettings:
        feedback_rerank = False
        feedback_weight = 0.25
        feedback_rerank_version = "adapter-123"

    config = RerankConfig.from_settings(FakeSettings())
    assert (config.enabled, config.weight, config.adapter) == (False, 0.25, "adapter-123")
    assert config.threshold == RerankConfig().threshold
    with pytest.raises(ValueError):
        RerankConfig(prior=0)
    with pytest.raises(ValueError):
        RerankConfig(customer_budget=0)


def test_vote_memory_replaces_removes_and_finds_neighbours() -> None:
    memory = VoteMemory(3)
    north = np.array([0.0, 0.0, 1.0], dtype=np.float32)
    vote = _vote("customer:1", ("a", 1, 1, 1.0))
    memory.put(vote, north * 5)  # normalised on the way in
    assert len(memory) == 1 and memory.rater_votes == {"customer:1": 1}
    (found,) = memory.neighbours(north, 0.9)
    assert found[0] == pytest.approx(1.0) and found[1] is vote

    replaced = _vote("customer:1", ("a", 1, -1, 1.0))
    memory.put(replaced, north)
    assert len(memory) == 1 and memory.rater_votes == {"customer:1": 1}
    assert memory.neighbours(north, 0.9)[0][1] is replaced
    assert memory.neighbours(np.array([1.0, 0.0, 0.0], dtype=np.float32), 0.5) == []

    for i in range(100):  # grows past its initial capacity
        memory.put(MemoryVote((f"x{i}", "customer", "2"), "customer:2", "customer", ()), north)
    assert len(memory) == 101 and memory.rater_votes["customer:2"] == 100
    memory.remove(replaced.key)
    memory.remove(replaced.key)  # unknown: no-op
    assert "customer:1" not in memory.rater_votes and len(memory) == 100
