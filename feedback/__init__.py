"""The feedback loop: capture votes, rerank with them, export datasets, fine-tune.

- `FeedbackService` (capture): votes, withdrawals, history, review lists and stats,
  exports through `feedback.datasets.write_export`.
- `FeedbackReranker` + `RerankedIndex` (rerank): votes on similar questions and a
  learned adapter (`feedback.adapter`) rescore every search, versioned in the trace.
- `feedback.finetune.finetune_retriever`: a new embedding model from retrieval triplets.
"""

from feedback.adapter import Adapter, train_adapter
from feedback.capture import FeedbackService, PassageMatch, Vote, VoteView, search_matcher
from feedback.errors import ExportError, FeedbackError, FinetuneError
from feedback.rerank import FeedbackReranker, RerankedIndex
from feedback.rerank_math import RerankConfig
from feedback.types import (
    ExportFilters,
    ExportFormat,
    ExportResult,
    FeedbackRecord,
    FeedbackSignal,
    RaterKind,
    Rating,
    RetrievedPassage,
)

__all__ = [
    "Adapter",
    "ExportError",
    "ExportFilters",
    "ExportFormat",
    "ExportResult",
    "FeedbackError",
    "FeedbackRecord",
    "FeedbackReranker",
    "FeedbackService",
    "FeedbackSignal",
    "FinetuneError",
    "PassageMatch",
    "RaterKind",
    "Rating",
    "RerankConfig",
    "RerankedIndex",
    "RetrievedPassage",
    "Vote",
    "VoteView",
    "search_matcher",
    "train_adapter",
]
