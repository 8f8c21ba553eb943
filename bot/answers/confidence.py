"""How much to trust the retrieved passages: pure functions over search hits.

Two signals decide whether Teller answers from the knowledge base at all:

- `best_cosine`: is any passage about the question? (cosine similarity is calibrated
  across queries, unlike fused scores);
- `retriever_support`: do keyword search and semantic search agree on a best document?
  When they do not, the top passage is the wrong one most of the time.
"""

from __future__ import annotations

from collections.abc import Sequence

from retrieval.fusion import convex
from retrieval.types import SearchHit

SUPPORT_DENSE_WEIGHT = 0.7
"""Weight of the cosine in `retriever_support`: the default fusion weight, the mix that
ranks best on the retrieval benchmark."""


def best_cosine(hits: Sequence[SearchHit]) -> float:
    """The highest dense (cosine) score among `hits`; 0.0 when none has one."""
    return max((h.dense_score for h in hits if h.dense_score is not None), default=0.0)


def retriever_support(
    hits: Sequence[SearchHit], *, dense_weight: float = SUPPORT_DENSE_WEIGHT
) -> float | None:
    """How strongly BM25 and dense search agree on a best document, in [0, 1].

    ``max over documents of  w * minmax(cosine) + (1 - w) * minmax(bm25)``, where a
    document's score on each list is that of its best chunk among `hits`, each list is
    min-max normalised over the documents it scored (a document it did not score counts
    0), and ``w`` = `dense_weight`. 1.0 means one document is first on both lists; the
    floor is ``max(w, 1 - w)`` (0.7), reached when each list's favourite is last on the
    other. Documents rather than chunks, so two chunks of the right document splitting
    the votes do not count as disagreement.

    Computed from each retriever's own scores, so it means the same with convex or RRF
    fusion, on either backend, and after feedback reranking has reordered the hits.
    Pass a deep list (the whole candidate list the reranker sees): over a handful of
    hits every passage is near the top of both lists. None when either retriever scored
    no hit (a query without indexable words): agreement is then undefined.
    """
    documents: dict[tuple[str, int], int] = {}
    dense: dict[int, float] = {}
    sparse: dict[int, float] = {}
    for hit in hits:
        doc = documents.setdefault((hit.doc_id, hit.version), len(documents))
        if hit.dense_score is not None:
            dense[doc] = max(dense.get(doc, hit.dense_score), hit.dense_score)
        if hit.bm25_score is not None:
            sparse[doc] = max(sparse.get(doc, hit.bm25_score), hit.bm25_score)
    if not dense or not sparse:
        return None
    return max(convex(dense, sparse, dense_weight=dense_weight).values())
