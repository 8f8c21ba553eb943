"""Score fusion for hybrid retrieval: pure functions over `{key: score}` maps.

Both backends fuse with these functions, so the embedded index and Elasticsearch's
client-side fusion rank identically for the same inputs.
"""

from __future__ import annotations

from collections.abc import Mapping

Scores = Mapping[int, float]


def min_max(scores: Scores) -> dict[int, float]:
    """Rescale scores to [0, 1]: ``(s - min) / (max - min)``.

    When every score is equal (or there is one), each becomes 1.0: the list carries
    no preference, and its members still beat documents it did not return (0.0).
    """
    if not scores:
        return {}
    lo, hi = min(scores.values()), max(scores.values())
    if hi <= lo:
        return dict.fromkeys(scores, 1.0)
    span = hi - lo
    return {key: (value - lo) / span for key, value in scores.items()}


def convex(dense: Scores, sparse: Scores, *, dense_weight: float) -> dict[int, float]:
    """Normalised weighted fusion: ``w * minmax(dense) + (1 - w) * minmax(sparse)``.

    A document missing from one list scores 0 on that list (below everything it
    returned). `dense_weight` is ``w`` in [0, 1]; 0.7 was chosen by measurement
    (see the README's retrieval benchmark).
    """
    if not 0.0 <= dense_weight <= 1.0:
        raise ValueError("dense_weight must be within [0, 1]")
    d, s = min_max(dense), min_max(sparse)
    return {
        key: dense_weight * d.get(key, 0.0) + (1.0 - dense_weight) * s.get(key, 0.0)
        for key in d.keys() | s.keys()
    }


def ranks(scores: Scores) -> dict[int, int]:
    """1-based ranks by descending score; ties broken by key for determinism."""
    ordered = sorted(scores.items(), key=lambda item: (-item[1], item[0]))
    return {key: position for position, (key, _) in enumerate(ordered, start=1)}


def rrf(
    dense: Scores, sparse: Scores, *, k: int = 60, dense_weight: float = 0.5
) -> dict[int, float]:
    """Weighted reciprocal rank fusion: ``sum_i w_i / (k + rank_i(d))``.

    ``k = 60`` is the constant of Cormack et al. (2009). With ``dense_weight = 0.5``
    both lists count equally (the weights are ``w`` and ``1 - w``, so the scale is
    half of textbook RRF; the order is the same).
    """
    if k < 1:
        raise ValueError("k must be at least 1")
    rd, rs = ranks(dense), ranks(sparse)
    fused: dict[int, float] = {}
    for key in rd.keys() | rs.keys():
        value = 0.0
        if key in rd:
            value += dense_weight / (k + rd[key])
        if key in rs:
            value += (1.0 - dense_weight) / (k + rs[key])
        fused[key] = value
    return fused


def top_k(scores: Scores, k: int) -> list[tuple[int, float]]:
    """The ``k`` best ``(key, score)`` pairs, ties broken by key."""
    return sorted(scores.items(), key=lambda item: (-item[1], item[0]))[:k]
