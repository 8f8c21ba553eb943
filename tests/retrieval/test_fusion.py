import pytest

from retrieval import fusion


def test_min_max_rescales_to_unit_interval() -> None:
    assert fusion.min_max({1: 2.0, 2: 4.0, 3: 3.0}) == {1: 0.0, 2: 1.0, 3: 0.5}


def test_min_max_of_equal_scores_is_one() -> None:
    assert fusion.min_max({1: 0.3, 2: 0.3}) == {1: 1.0, 2: 1.0}
    assert fusion.min_max({}) == {}


def test_convex_weights_both_lists_and_fills_missing_with_zero() -> None:
    dense = {1: 0.9, 2: 0.5}
    sparse = {2: 10.0, 3: 4.0}
    fused = fusion.convex(dense, sparse, dense_weight=0.7)
    assert fused[1] == pytest.approx(0.7)  # top of dense, absent from BM25
    assert fused[2] == pytest.approx(0.3)  # bottom of dense, top of BM25
    assert fused[3] == pytest.approx(0.0)
    assert fusion.convex(dense, sparse, dense_weight=1.0)[1] == pytest.approx(1.0)


def test_convex_rejects_weights_outside_unit_interval() -> None:
    with pytest.raises(ValueError, match="dense_weight"):
        fusion.convex({}, {}, dense_weight=1.5)


def test_rrf_uses_ranks_not_scores() -> None:
    fused = fusion.rrf({1: 100.0, 2: 1.0}, {2: 0.2, 1: 0.1}, k=60)
    assert fused[1] == pytest.approx(0.5 / 61 + 0.5 / 62)
    assert fused[2] == pytest.approx(0.5 / 62 + 0.5 / 61)
    assert fusion.rrf({1: 1.0}, {}, k=1) == {1: pytest.approx(0.25)}


def test_ranks_and_top_k_break_ties_by_key() -> None:
    scores = {5: 1.0, 3: 1.0, 9: 2.0}
    assert fusion.ranks(scores) == {9: 1, 3: 2, 5: 3}
    assert fusion.top_k(scores, 2) == [(9, 2.0), (3, 1.0)]
