"""Ranking metrics (nDCG@k, recall@k, MRR@k) through ranx, and latency percentiles."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import numpy as np

Qrels = Mapping[str, Mapping[str, int]]
RunScores = Mapping[str, Mapping[str, float]]

DEFAULT_METRICS = ("ndcg@10", "recall@5", "mrr@10")


def evaluate(
    qrels: Qrels, run: RunScores, metrics: Sequence[str] = DEFAULT_METRICS
) -> dict[str, float]:
    """Mean of each metric over the queries in `qrels` (queries with no hits score 0).

    nDCG uses the Järvelin-Kekäläinen gain (``rel``) with ``log2(rank + 1)`` discount,
    as in trec_eval; recall@k is relevant-retrieved-in-top-k / relevant; MRR@k is the
    mean of ``1 / rank`` of the first relevant hit within the top k.
    """
    from ranx import Qrels as RQrels
    from ranx import Run as RRun
    from ranx import evaluate as ranx_evaluate

    full_run = {qid: dict(run.get(qid, {})) for qid in qrels}
    # ranx cannot score an empty ranking; a sentinel id that is never relevant scores 0.
    for ranking in full_run.values():
        if not ranking:
            ranking["__no_hit__"] = 0.0
    with warnings.catch_warnings():
        # ranx's numba kernels warn about a uint64 -> int64 cast of rank counters; harmless.
        warnings.simplefilter("ignore")
        scores = ranx_evaluate(
            RQrels({q: dict(r) for q, r in qrels.items()}), RRun(full_run), list(metrics)
        )
    if isinstance(scores, float):
        return {metrics[0]: round(float(scores), 4)}
    return {name: round(float(value), 4) for name, value in scores.items()}


def percentiles(samples_ms: Sequence[float], points: Sequence[int] = (50, 99)) -> dict[str, float]:
    """Latency percentiles (linear interpolation), rounded to 0.01 ms."""
    if not samples_ms:
        return {f"p{p}": float("nan") for p in points}
    values = np.asarray(samples_ms, dtype=np.float64)
    return {f"p{p}": round(float(np.percentile(values, p)), 2) for p in points}
