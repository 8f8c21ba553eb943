"""`teller bench feedback` on a tiny BEIR collection written here (real model, CPU)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.settings import Settings
from feedback.bench import (
    bench_feedback,
    cap_triplets,
    corpus_union,
    load_split,
    opened,
    replay,
)
from retrieval.errors import DocumentParseError

TOPICS = {
    "wire": (
        "Sending a wire transfer costs $30 for domestic and $45 for international wires.",
        "How much does a wire transfer cost?",
    ),
    "freeze": (
        "Freeze a lost card at once in the mobile app under Cards, then Freeze.",
        "How do I freeze my lost card?",
    ),
    "atm": (
        "Withdrawals at our own ATMs are free; other banks' ATMs cost $2.50.",
        "Do ATM withdrawals cost anything?",
    ),
    "rate": (
        "The savings account pays interest monthly on the daily balance.",
        "When is savings interest paid?",
    ),
    "password": (
        "Reset your online banking password from the sign-in page with Forgot password.",
        "How can I reset my online password?",
    ),
    "overdraft": (
        "An overdraft fee of $35 applies when a payment exceeds your balance.",
        "What is the overdraft fee?",
    ),
    "statement": (
        "Monthly statements are available in online banking under Documents.",
        "Where do I find my statements?",
    ),
    "travel": (
        "Tell us before you travel abroad so your card keeps working.",
        "Do I need to report travel plans?",
    ),
}


def _beir(root: Path, name: str, topics: list[str], qrels_name: str = "test") -> Path:
    folder = root / name
    (folder / "qrels").mkdir(parents=True)
    with (folder / "corpus.jsonl").open("w") as corpus:
        for doc_id, (text, _) in TOPICS.items():
            corpus.write(json.dumps({"_id": doc_id, "title": "", "text": text}) + "\n")
    with (folder / "queries.jsonl").open("w") as queries:
        for doc_id, (_, question) in TOPICS.items():
            queries.write(json.dumps({"_id": f"q-{doc_id}", "text": question}) + "\n")
    lines = ["query-id\tcorpus-id\tscore"] + [f"q-{t}\t{t}\t1" for t in topics]
    (folder / "qrels" / f"{qrels_name}.tsv").write_text("\n".join(lines) + "\n")
    return folder


def test_load_split_needs_exactly_one_qrels_file(tmp_path: Path) -> None:
    folder = _beir(tmp_path, "one", ["wire", "atm"])
    queries, qrels = load_split(folder)
    assert set(queries) == {"q-wire", "q-atm"} and qrels["q-atm"] == {"atm": 1}
    (folder / "qrels" / "dev.tsv").write_text("query-id\tcorpus-id\tscore\n")
    with pytest.raises(DocumentParseError, match="exactly one"):
        load_split(folder)


def test_corpus_union_and_triplet_cap(tmp_path: Path) -> None:
    a = _beir(tmp_path, "a", ["wire"])
    b = _beir(tmp_path, "b", ["atm"])
    assert len(corpus_union(a, b)) == len(TOPICS)
    source = tmp_path / "t.jsonl"
    rows = [
        {"query": q, "positive": p, "negative": "n"}
        for q, p in [("q1", "a"), ("q1", "b"), ("q2", "c")]
    ]
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    capped = cap_triplets(source, tmp_path / "c.jsonl", 1)
    assert [json.loads(line)["positive"] for line in capped.read_text().splitlines()] == ["a", "c"]


@pytest.mark.slow
def test_the_benchmark_prints_every_number(
    tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    train = _beir(tmp_path, "train", ["wire", "freeze", "atm", "rate"], "dev")
    evaluation = _beir(tmp_path, "eval", ["password", "overdraft", "statement", "travel"])
    lines: list[str] = []
    result = bench_feedback(
        make_settings(), train, evaluation, hostile_votes=12, agent_rate=1.0, progress=lines.append
    )
    for key in ("before", "after_rerank", "after_finetune", "poisoned"):
        assert 0.0 <= result[key]["ndcg@10"] <= 1.0
    assert result["feedback_events"] == result["events"]["customer"] + result["events"]["agent"]
    assert result["events"]["customer"] == 4 and result["hostile_votes"] == 12
    assert result["docs"] == len(TOPICS) and result["eval"]["queries"] == 4
    assert {"ingest_s", "replay_s", "finetune_s", "reindex_s", "poisoned_s"} <= set(
        result["timings_s"]
    )
    assert lines and all(line.endswith(" s") for line in lines)


def test_replay_uses_the_same_conversations_on_every_run(
    tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    # The retrieval export splits train/validation by conversation: random ids would
    # hand fine-tuning different triplets on each run of the benchmark.
    from sqlalchemy import select

    from db.models import Conversation

    train = _beir(tmp_path, "train", ["wire", "freeze", "atm"], "dev")
    queries, qrels = load_split(train)
    docs = corpus_union(train)
    texts = {doc.doc_id or "": doc.text for doc in docs}
    runs = []
    for name in ("one", "two"):
        with opened(make_settings(data_dir=tmp_path / name)) as stack:
            stack.knowledge.ingest_documents(docs)
            replay(stack, queries, qrels, texts, seed=13, agent_rate=1.0)
            with stack.runtime.sessions() as session:
                runs.append(sorted(session.scalars(select(Conversation.id))))
    assert runs[0] == runs[1] == ["sim-13-0", "sim-13-1", "sim-13-2"]


def test_an_unknown_loss_is_refused_before_the_replay(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from bot.cli import app

    train = _beir(tmp_path, "train", ["wire"], "dev")
    evaluation = _beir(tmp_path, "eval", ["atm"])
    args = ["bench", "feedback", "--train", str(train), "--eval", str(evaluation)]
    result = CliRunner().invoke(app, [*args, "--loss", "cosine"])
    assert result.exit_code == 2
    assert "unknown loss 'cosine': choose one of symmetric, mnrl" in result.output
    assert "Traceback" not in result.output


def test_split_beir_writes_two_disjoint_seeded_halves(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from bot.cli import app

    source = _beir(tmp_path, "all", list(TOPICS), qrels_name="dev")
    out = tmp_path / "halves"
    result = CliRunner().invoke(
        app, ["bench", "split", "--dataset", str(source), "--out", str(out), "--seed", "7"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["train"]["queries"] == 4
    train_queries, train_qrels = load_split(out / "train")
    eval_queries, _ = load_split(out / "eval")
    assert len(train_queries) == len(eval_queries) == 4
    assert set(train_queries).isdisjoint(eval_queries)
    assert set(train_queries) | set(eval_queries) == {f"q-{t}" for t in TOPICS}
    assert all(train_qrels[q] == {q.removeprefix("q-"): 1} for q in train_queries)
    assert (out / "train" / "corpus.jsonl").is_symlink()  # read, never copied
    # The same seed gives the same halves; a rerun over existing folders works.
    again = CliRunner().invoke(
        app, ["bench", "split", "--dataset", str(source), "--out", str(out), "--seed", "7"]
    )
    assert again.exit_code == 0 and load_split(out / "train")[0] == train_queries
    bad = CliRunner().invoke(
        app, ["bench", "split", "--dataset", str(source), "--out", str(out), "--split", "nope"]
    )
    assert bad.exit_code == 2 and "nope.tsv not found" in bad.output


def test_split_beir_folds_score_every_query_once(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from bot.cli import app

    source = _beir(tmp_path, "all", list(TOPICS), qrels_name="dev")
    evals: list[set[str]] = []
    for fold in range(3):
        out = tmp_path / f"fold{fold}"
        args = ["bench", "split", "--dataset", str(source), "--out", str(out)]
        result = CliRunner().invoke(app, [*args, "--folds", "3", "--fold", str(fold)])
        assert result.exit_code == 0, result.output
        assert json.loads(result.output)["folds"] == 3
        train_queries, _ = load_split(out / "train")
        eval_queries, _ = load_split(out / "eval")
        assert set(train_queries).isdisjoint(eval_queries)
        assert len(train_queries) + len(eval_queries) == len(TOPICS)
        evals.append(set(eval_queries))
    assert all(len(part) in (2, 3) for part in evals)  # 8 queries in near-equal thirds
    assert set().union(*evals) == {f"q-{t}" for t in TOPICS}
    assert sum(map(len, evals)) == len(TOPICS)  # each query is eval exactly once
    out = tmp_path / "bad"
    base = ["bench", "split", "--dataset", str(source), "--out", str(out)]
    bad = CliRunner().invoke(app, [*base, "--folds", "3", "--fold", "3"])
    assert bad.exit_code == 2 and "--fold between 0 and 2" in bad.output
    assert CliRunner().invoke(app, [*base, "--fold", "1"]).exit_code == 2
