"""A bounded, thread-safe cache of text vectors (least recently used goes first)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence

import numpy as np

from retrieval.types import Matrix


class VectorCache:
    """Remembers up to `size` text → vector pairs; `size=0` remembers nothing.

    Callers get copies, so none can change a cached vector in place. The model runs
    outside the lock: two threads missing the same text may both embed it, harmlessly.
    """

    def __init__(self, size: int) -> None:
        if size < 0:
            raise ValueError("cache size must not be negative")
        self._size = size
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._vectors)

    def vectors(self, texts: Sequence[str], embed: Callable[[Sequence[str]], Matrix]) -> Matrix:
        """One row per text, in order; only texts not cached are embedded, in one batch."""
        if not texts:
            return embed([])
        with self._lock:
            found = {t: self._vectors[t] for t in texts if t in self._vectors}
            for text in found:
                self._vectors.move_to_end(text)
        missing = [t for t in dict.fromkeys(texts) if t not in found]
        if missing:
            fresh = embed(missing)
            with self._lock:
                for text, vector in zip(missing, fresh, strict=True):
                    found[text] = vector
                    self._remember(text, vector)
        return np.stack([found[t] for t in texts]).astype(np.float32, copy=False)

    def _remember(self, text: str, vector: np.ndarray) -> None:
        if self._size == 0:
            return
        self._vectors[text] = vector
        while len(self._vectors) > self._size:
            self._vectors.popitem(last=False)
