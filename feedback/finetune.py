"""Fine-tune the retriever's embedding model on exported (query, positive, negative) triplets.

Training uses sentence-transformers' `SentenceTransformerTrainer` with
`MultipleNegativesRankingLoss` (symmetric by default, see `LOSSES`), on the CPU, offline,
with no reporting integration, and seeded. The model is compared before and
after on the validation triplets (see `triplet_metrics`) and written with a
``report.json`` beside its weights.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from feedback.errors import FinetuneError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

REPORT_NAME = "report.json"
FIELDS = ("query", "positive", "negative")
# `MultipleNegativesRankingLoss` settings by name. `mnrl` ranks the batch's passages for
# each query; `symmetric` also ranks the batch's queries for each positive passage, each
# direction with its own softmax (what sentence-transformers' deprecated
# `MultipleNegativesSymmetricRankingLoss` was). On the bankfaqs feedback benchmark
# `symmetric` gave +0.006 / +0.005 nDCG@10 over `mnrl` on two splits (README).
LOSSES: dict[str, dict[str, Any]] = {
    "symmetric": {
        "directions": ("query_to_doc", "doc_to_query"),
        "partition_mode": "per_direction",
    },
    "mnrl": {"directions": ("query_to_doc",), "partition_mode": "joint"},
}


def check_loss(loss: str) -> None:
    """Raise `FinetuneError` unless `loss` names a preset of `LOSSES`."""
    if loss not in LOSSES:
        raise FinetuneError(f"unknown loss {loss!r}: choose one of {', '.join(LOSSES)}")


@dataclass(frozen=True, slots=True)
class Triplet:
    """A query, a passage that answers it and one that does not."""

    query: str
    positive: str
    negative: str


def read_triplets(path: Path) -> list[Triplet]:
    """Triplets from a retrieval export (JSON Lines with non-empty query/positive/negative).

    Raises `FinetuneError` naming the first bad line, or when the file has no triplet.
    """
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise FinetuneError(f"cannot read training data {path}: {exc}") from exc
    triplets = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise FinetuneError(f"{path}:{number} is not JSON: {exc.msg}") from exc
        if not isinstance(row, dict) or not all(
            isinstance(row.get(f), str) and row[f].strip() for f in FIELDS
        ):
            raise FinetuneError(
                f"{path}:{number} needs non-empty string fields {', '.join(FIELDS)}; "
                "export with `--format retrieval`"
            )
        triplets.append(Triplet(row["query"], row["positive"], row["negative"]))
    if not triplets:
        raise FinetuneError(f"{path} holds no triplets: export more feedback first")
    return triplets


def reciprocal_rank(relevant: Sequence[bool], k: int = 10) -> float:
    """``1 / rank`` of the first relevant result within the top `k` (0 when none)."""
    for rank, hit in enumerate(relevant[:k], start=1):
        if hit:
            return 1.0 / rank
    return 0.0


def ndcg(relevant: Sequence[bool], total_relevant: int, k: int = 10) -> float:
    """Binary nDCG@k: ``DCG / IDCG`` with ``DCG = sum(rel_i / log2(i + 1))`` over ranks
    ``i = 1..k`` and IDCG the DCG of `total_relevant` hits ranked first (0 when none)."""
    dcg = sum(1.0 / np.log2(i + 1) for i, hit in enumerate(relevant[:k], start=1) if hit)
    ideal = sum(1.0 / np.log2(i + 1) for i in range(1, min(total_relevant, k) + 1))
    return float(dcg / ideal) if ideal > 0 else 0.0


def triplet_metrics(
    query_vectors: np.ndarray,
    positive_vectors: np.ndarray,
    negative_vectors: np.ndarray,
    triplets: Sequence[Triplet],
    *,
    k: int = 10,
) -> dict[str, float]:
    """Accuracy over the triplets, MRR@k and nDCG@k over the triplets' passages.

    Rows are L2-normalised vectors, so cosine is a dot product.
    ``accuracy = mean(cos(q, pos) > cos(q, neg))``. For the ranking metrics each
    distinct query is searched by cosine over every distinct passage of the set
    (positives and negatives, ties kept in first-seen order); its relevant passages are
    its positives; `reciprocal_rank` and `ndcg` are averaged over the queries.
    """
    pos_scores = np.sum(query_vectors * positive_vectors, axis=1)
    neg_scores = np.sum(query_vectors * negative_vectors, axis=1)
    accuracy = float(np.mean(pos_scores > neg_scores))

    passages: dict[str, np.ndarray] = {}
    queries: dict[str, np.ndarray] = {}
    relevant: dict[str, set[str]] = {}
    for i, t in enumerate(triplets):
        passages.setdefault(t.positive, positive_vectors[i])
        passages.setdefault(t.negative, negative_vectors[i])
        queries.setdefault(t.query, query_vectors[i])
        relevant.setdefault(t.query, set()).add(t.positive)
    texts = list(passages)
    corpus = np.stack([passages[text] for text in texts])
    mrr, gains = [], []
    for query, vector in queries.items():
        order = np.argsort(-(corpus @ vector), kind="stable")
        hits = [texts[j] in relevant[query] for j in order]
        mrr.append(reciprocal_rank(hits, k))
        gains.append(ndcg(hits, len(relevant[query]), k))
    return {
        "accuracy": round(accuracy, 4),
        f"mrr@{k}": round(float(np.mean(mrr)), 4),
        f"ndcg@{k}": round(float(np.mean(gains)), 4),
    }


def _encode(model: SentenceTransformer, texts: Sequence[str], batch_size: int) -> np.ndarray:
    vectors = model.encode(
        list(texts),
        batch_size=batch_size,
        normalize_embeddings=True,
        convert_to_numpy=True,
        show_progress_bar=False,
    )
    return np.asarray(vectors, dtype=np.float32)


def _evaluate(
    model: SentenceTransformer, triplets: Sequence[Triplet], batch_size: int
) -> dict[str, float]:
    return triplet_metrics(
        _encode(model, [t.query for t in triplets], batch_size),
        _encode(model, [t.positive for t in triplets], batch_size),
        _encode(model, [t.negative for t in triplets], batch_size),
        triplets,
    )


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _load(path: Path, seed: int) -> SentenceTransformer:
    from sentence_transformers import SentenceTransformer
    from transformers import set_seed
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    set_seed(seed)
    try:
        return SentenceTransformer(str(path), device="cpu", local_files_only=True)
    except Exception as exc:  # any loader failure means a bad model folder
        raise FinetuneError(f"could not load the base model from {path}: {exc}") from exc


def finetune_retriever(
    data: Path,
    out: Path,
    *,
    base_model: Path,
    epochs: int = 1,
    batch_size: int = 16,
    learning_rate: float = 2e-5,
    seed: int = 13,
    validation: Path | None = None,
    loss: str = "symmetric",
) -> dict[str, Any]:
    """Fine-tune `base_model` on the triplets in `data`; write the model and report to `out`.

    Loss: `MultipleNegativesRankingLoss` set up as `LOSSES[loss]`: in-batch negatives plus
    each triplet's hard negative for every query and, with `symmetric`, the batch's
    queries as negatives for every positive; batches never repeat a text. Metrics
    (`triplet_metrics`) are taken before and after training on `validation`, or on the
    training triplets when there is none (the report says which). `out` must not exist
    or be empty; the model is written to a temporary sibling and renamed, so a failure
    leaves no half-written model. Returns the report, also saved as ``out/report.json``.
    Raises `FinetuneError` on empty or invalid data, bad arguments (an unknown `loss`
    included), an unloadable model or a non-empty `out`.
    """
    if epochs < 1 or batch_size < 2 or learning_rate <= 0:
        raise FinetuneError("epochs must be >= 1, batch_size >= 2 and learning_rate > 0")
    check_loss(loss)
    started = time.perf_counter()
    train = read_triplets(data)
    held_out = read_triplets(validation) if validation is not None else train
    if not (base_model / "modules.json").is_file() and not (base_model / "config.json").is_file():
        raise FinetuneError(f"{base_model} is not a sentence-transformers model directory")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FinetuneError(f"{out} already exists and is not empty; choose a new directory")
    # Before the Hugging Face libraries are imported: they read these once.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

    from datasets import Dataset
    from sentence_transformers import (
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.base.sampler import BatchSamplers
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    model = _load(base_model, seed)
    eval_batch = max(batch_size, 32)
    timings: dict[str, float] = {}
    mark = time.perf_counter()
    before = _evaluate(model, held_out, eval_batch)
    timings["evaluate_before_s"] = round(time.perf_counter() - mark, 3)

    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))
    try:
        dataset = Dataset.from_dict({f: [getattr(t, f) for t in train] for f in FIELDS})
        args = SentenceTransformerTrainingArguments(
            output_dir=str(staging / "checkpoints"),
            num_train_epochs=epochs,
            per_device_train_batch_size=batch_size,
            learning_rate=learning_rate,
            warmup_steps=0.1,  # a float is a share of the steps in Transformers 5
            seed=seed,
            data_seed=seed,
            use_cpu=True,
            report_to="none",
            save_strategy="no",
            logging_strategy="no",
            disable_tqdm=True,
            dataloader_num_workers=0,
            batch_sampler=BatchSamplers.NO_DUPLICATES,
        )
        trainer = SentenceTransformerTrainer(
            model=model,
            args=args,
            train_dataset=dataset,
            loss=MultipleNegativesRankingLoss(model, **LOSSES[loss]),
        )
        mark = time.perf_counter()
        # The Trainer prints its final metrics on stdout; keep stdout for the JSON report.
        with contextlib.redirect_stdout(sys.stderr):
            outcome = trainer.train()
        timings["train_s"] = round(time.perf_counter() - mark, 3)
        mark = time.perf_counter()
        after = _evaluate(model, held_out, eval_batch)
        timings["evaluate_after_s"] = round(time.perf_counter() - mark, 3)

        model_dir = staging / "model"
        model.save(str(model_dir))
        timings["total_s"] = round(time.perf_counter() - started, 3)
        report: dict[str, Any] = {
            "base_model": str(base_model),
            "output": str(out),
            "loss": {
                "name": "MultipleNegativesRankingLoss",
                "preset": loss,
                **{key: list(v) if isinstance(v, tuple) else v for key, v in LOSSES[loss].items()},
            },
            "data": {"path": str(data), "sha256": _sha256(data), "triplets": len(train)},
            "validation": {
                "path": str(validation) if validation is not None else None,
                "sha256": _sha256(validation) if validation is not None else None,
                "triplets": len(held_out),
                "evaluated_on": "validation" if validation is not None else "train",
            },
            "params": {
                "epochs": epochs,
                "batch_size": batch_size,
                "learning_rate": learning_rate,
                "seed": seed,
            },
            "train_loss": round(float(outcome.training_loss), 6),
            "steps": int(outcome.global_step),
            "before": before,
            "after": after,
            "timings": timings,
            "versions": {
                name: importlib.metadata.version(name)
                for name in ("sentence-transformers", "transformers", "torch")
            },
        }
        (model_dir / REPORT_NAME).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        if out.exists():
            out.rmdir()
        os.replace(model_dir, out)
    except FinetuneError:
        raise
    except Exception as exc:
        raise FinetuneError(f"fine-tuning failed: {exc}") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return report
