"""Sentence-transformers embedder, loaded from a local directory (no network)."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from retrieval.errors import ModelLoadError
from retrieval.types import Matrix, Vector
from retrieval.vector_cache import VectorCache

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer


class SentenceTransformerEmbedder:
    """`Embedder` backed by a sentence-transformers model directory.

    The constructor only validates the path; `load()` reads the weights (once, at
    start-up). Vectors are L2-normalised float32, so cosine similarity is a dot product.

    `name` identifies the model by its content, not only its folder: stored vectors,
    votes and reranker weight sets record it, and anything recorded under another name
    is embedded again (two fine-tuned models saved in folders of the same name must
    never share vectors).
    """

    def __init__(
        self,
        model_path: str | Path,
        *,
        batch_size: int = 32,
        device: str = "cpu",
        query_cache_size: int = 1024,
    ):
        path = Path(model_path)
        if not path.is_dir():
            raise ModelLoadError(
                f"embedding model directory {path} does not exist; set TELLER_EMBEDDING_MODEL "
                "to a local sentence-transformers folder"
            )
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if query_cache_size < 0:
            raise ValueError("query_cache_size must not be negative")
        self._path = path
        self._batch_size = batch_size
        self._device = device
        self._model: SentenceTransformer | None = None
        self._lock = threading.Lock()
        self._name: str | None = None
        self._queries = VectorCache(query_cache_size)

    @property
    def label(self) -> str:
        """The model folder's name (its parent's when the folder is called ``model``)."""
        return self._path.name if self._path.name != "model" else self._path.parent.name

    @property
    def name(self) -> str:
        """``<label>-<first 10 hex digits of content_digest>``, computed once."""
        if self._name is None:
            self._name = f"{self.label}-{content_digest(self._path)[:10]}"
        return self._name

    @property
    def path(self) -> Path:
        return self._path

    @property
    def dimension(self) -> int:
        dim = self._loaded().get_embedding_dimension()
        if dim is None:
            raise ModelLoadError(f"model at {self._path} does not report its dimension")
        return int(dim)

    def load(self) -> None:
        """Load the weights now (idempotent, thread-safe)."""
        self._loaded()

    def _loaded(self) -> SentenceTransformer:
        if self._model is None:
            with self._lock:
                if self._model is None:
                    os.environ.setdefault("HF_HUB_OFFLINE", "1")
                    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                    from sentence_transformers import SentenceTransformer
                    from transformers.utils import logging as hf_logging

                    hf_logging.disable_progress_bar()

                    try:
                        self._model = SentenceTransformer(
                            str(self._path), device=self._device, local_files_only=True
                        )
                    except Exception as exc:  # any loader failure means a bad model folder
                        raise ModelLoadError(
                            f"could not load the embedding model from {self._path}: {exc}"
                        ) from exc
        return self._model

    def embed_documents(self, texts: Sequence[str]) -> Matrix:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self._loaded().encode(
            list(texts),
            batch_size=self._batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)

    def embed_query(self, text: str) -> Vector:
        """Cached: one answer embeds its question for search and again to compose, and
        customers ask the same questions (the last `query_cache_size` are kept)."""
        return self._queries.vectors([text], self.embed_documents)[0]


def content_digest(folder: Path) -> str:
    """SHA-256 over the relative path and bytes of every file under `folder` that can
    change the vectors (weights, configuration, tokenizer), in path order.

    Skipped: hidden files, Markdown and the fine-tuning ``report.json``, which describe
    a model without changing it. Reads the weights once (about 0.2 s for MiniLM).
    """
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        relative = path.relative_to(folder)
        if any(part.startswith(".") for part in relative.parts):
            continue
        if path.suffix.lower() == ".md" or relative.as_posix() == "report.json":
            continue
        digest.update(relative.as_posix().encode() + b"\0")
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        digest.update(b"\0")
    return digest.hexdigest()
