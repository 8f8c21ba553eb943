"""Dataset builders and the export writer, loaded back with Hugging Face `datasets`."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from feedback.datasets import (
    build_examples,
    normalise_text,
    select_answers,
    split_of,
    write_export,
)
from feedback.errors import ExportError
from feedback.types import ExportFilters, ExportFormat, FeedbackRecord, RetrievedPassage

T0 = dt.datetime(2026, 10, 1, 9, 0, tzinfo=dt.UTC)
RATES = "30-year fixed: 6.125% (APR 6.250%), rate sheet of 2026-10-01."
NOISE = "Branch opening hours: 9am to 5pm on weekdays."
WRONG = "Savings accounts earn 4.10% APY."
DISPUTES = "To dispute a card charge call 1-800-555-0142, available 24/7."


def passage(chunk_id: int, text: str, *, cited: bool, rank: int = 1) -> RetrievedPassage:
    return RetrievedPassage(chunk_id, f"doc-{chunk_id}", 1, rank, text, cited)


def vote(
    answer_id: str,
    rating: str = "up",
    *,
    n: int = 0,
    conversation: str | None = "c1",
    question: str = "What is the rate for a 30-year fixed?",
    answer: str = "The 30-year fixed rate is 6.125%.",
    passages: Sequence[RetrievedPassage] = (),
    rater_kind: str = "customer",
    correction: str | None = None,
    reasons: tuple[str, ...] = (),
    history: tuple[tuple[str, str], ...] = (),
    channel: str = "web",
    metadata: dict[str, Any] | None = None,
    minutes: int = 0,
) -> FeedbackRecord:
    return FeedbackRecord(
        feedback_id=f"{answer_id}-v{n}",
        answer_id=answer_id,
        conversation_id=conversation,
        rating=rating,  # type: ignore[arg-type]
        rater_kind=rater_kind,  # type: ignore[arg-type]
        rater_id=f"rater-{n}",
        reasons=reasons,
        comment=None,
        correction=correction,
        question=question,
        rewritten_query=question,
        answer_text=answer,
        history=history,
        passages=tuple(passages),
        channel=channel,
        product=None,
        created_at=T0 + dt.timedelta(minutes=minutes),
        metadata=metadata or {},
    )


@pytest.fixture
def records() -> list[FeedbackRecord]:
    rates_trace = [passage(1, RATES, cited=True), passage(2, NOISE, cited=False, rank=2)]
    return [
        # a1: approved by 3 of 4 customers.
        *(vote("a1", "up", n=i, passages=rates_trace, minutes=i) for i in range(3)),
        vote("a1", "down", n=3, passages=rates_trace, minutes=3),
        # a2: same question (other spelling), rejected, cited the wrong passage.
        vote(
            "a2",
            "down",
            conversation="c2",
            question="what is the rate for a 30 year fixed",
            answer="Savings earn 4.10% APY.",
            passages=[passage(3, WRONG, cited=True)],
            reasons=("wrong_answer",),
            minutes=10,
        ),
        # a3: personal data everywhere; an agent corrected it and named the source passage.
        vote(
            "a3",
            "down",
            conversation="c3",
            history=(("user", "hi, my email is JOHN.DOE@EXAMPLE.COM"), ("assistant", "Hello!")),
            question="My card 4111 1111 1111 1111 was charged twice, call me at 415-555-2671",
            answer="I cannot help with that.",
            passages=[passage(4, DISPUTES, cited=False), passage(3, WRONG, cited=True, rank=2)],
            rater_kind="agent",
            correction="Sorry! Call 1-800-555-0142 to dispute the charge on card 4111111111111111.",
            metadata={"correction_passage": 4},
            reasons=("wrong_answer",),
            minutes=20,
        ),
        # a4: one up, one down: no majority, never exported.
        vote("a4", "up", conversation=None, question="Tie?", answer="Maybe.", minutes=30),
        vote("a4", "down", n=1, conversation=None, question="Tie?", answer="Maybe.", minutes=31),
        # a5: 2 of 3 up (agreement 0.67), from the app.
        *(
            vote(
                "a5",
                r,
                n=i,
                conversation="c5",
                question="Fees?",
                answer="None.",
                channel="app",
                minutes=40 + i,
            )
            for i, r in enumerate(["up", "up", "down"])
        ),
    ]


def load(result_files: dict[str, str], tmp_path: Path) -> dict[str, Any]:
    """Load every non-empty split with `datasets.load_dataset("json", ...)`."""
    from datasets import load_dataset

    files = {split: path for split, path in result_files.items() if Path(path).stat().st_size > 0}
    return dict(load_dataset("json", data_files=files, cache_dir=str(tmp_path / "hf-cache")))


def test_votes_are_aggregated_per_answer(records: list[FeedbackRecord]) -> None:
    answers = {a.answer.answer_id: a for a in select_answers(records, ExportFilters())}
    assert sorted(answers) == ["a1", "a2", "a3", "a5"]  # a4 is a tie
    assert answers["a1"].rating == "up" and answers["a1"].agreement == 0.75
    assert answers["a3"].rating == "down" and answers["a3"].correction is not None
    assert answers["a5"].agreement == pytest.approx(2 / 3)


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (ExportFilters(min_agreement=0.7), ["a1", "a2", "a3"]),
        (ExportFilters(min_agreement=0.8), ["a2", "a3"]),  # corrections are exempt
        (ExportFilters(rating="up"), ["a1", "a5"]),
        (ExportFilters(reason="wrong_answer"), ["a2", "a3"]),
        (ExportFilters(channel="app"), ["a5"]),
        (
            ExportFilters(since=T0 + dt.timedelta(minutes=10), until=T0 + dt.timedelta(minutes=40)),
            ["a2", "a3"],
        ),
        # Naive datetimes are read as UTC.
        (ExportFilters(since=dt.datetime(2026, 10, 1, 9, 35)), ["a5"]),
    ],
)
def test_filters(
    records: list[FeedbackRecord], filters: ExportFilters, expected: list[str]
) -> None:
    assert [a.answer.answer_id for a in select_answers(records, filters)] == expected


@pytest.mark.parametrize(
    "filters",
    [
        ExportFilters(min_agreement=0.0),
        ExportFilters(min_agreement=1.5),
        ExportFilters(since=T0, until=T0),
    ],
)
def test_bad_filters_are_refused(records: list[FeedbackRecord], filters: ExportFilters) -> None:
    with pytest.raises(ExportError):
        select_answers(records, filters)


def test_sft_rows_are_approved_answers_and_corrections(records: list[FeedbackRecord]) -> None:
    answers = select_answers(records, ExportFilters())
    rows = [e.row for e in build_examples(answers, "sft", system_prompt="You are Teller.")]
    assert len(rows) == 3  # a1, a3 (corrected), a5
    first = rows[0]["messages"]
    assert [m["role"] for m in first] == ["system", "user", "assistant"]
    assert first[-1]["content"] == "The 30-year fixed rate is 6.125%."
    corrected = rows[1]["messages"]
    assert [m["role"] for m in corrected] == ["system", "user", "assistant", "user", "assistant"]
    assert corrected[-1]["content"].startswith("Sorry! Call 1-800-555-0142")


def test_kto_labels(records: list[FeedbackRecord]) -> None:
    rows = [e.row for e in build_examples(select_answers(records, ExportFilters()), "kto")]
    labels = [(r["completion"][0]["content"][:12], r["label"]) for r in rows]
    assert labels == [
        ("The 30-year ", True),
        ("Savings earn", False),
        ("I cannot hel", False),
        ("Sorry! Call ", True),
        ("None.", True),
    ]
    assert all(r["prompt"][-1]["role"] == "user" for r in rows)


def test_preference_pairs(records: list[FeedbackRecord]) -> None:
    rows = [e.row for e in build_examples(select_answers(records, ExportFilters()), "preference")]
    pairs = [(r["chosen"][0]["content"][:12], r["rejected"][0]["content"][:12]) for r in rows]
    # a2 against the approved a1 (same normalised question), a3 against its correction.
    assert pairs == [("The 30-year ", "Savings earn"), ("Sorry! Call ", "I cannot hel")]


def test_retrieval_triplets(records: list[FeedbackRecord]) -> None:
    rows = [e.row for e in build_examples(select_answers(records, ExportFilters()), "retrieval")]
    assert {(r["positive"], r["negative"]) for r in rows} == {(RATES, WRONG), (DISPUTES, WRONG)}


def test_normalise_text() -> None:
    assert normalise_text("  What's the RATE, for a 30-year?") == "what s the rate for a 30 year"


@pytest.mark.parametrize("fmt", ["sft", "kto", "preference", "retrieval"])
def test_every_format_loads_with_datasets(
    records: list[FeedbackRecord], tmp_path: Path, fmt: ExportFormat
) -> None:
    result = write_export(
        records, fmt, tmp_path / f"{fmt}.jsonl", ExportFilters(), validation_fraction=0.5
    )
    assert result.format == fmt
    loaded = load(dict(result.files), tmp_path)
    total = sum(len(split) for split in loaded.values())
    assert total == sum(result.counts.values()) > 0
    expected_columns = {
        "sft": {"messages"},
        "kto": {"prompt", "completion", "label"},
        "preference": {"prompt", "chosen", "rejected"},
        "retrieval": {"query", "positive", "negative"},
    }[fmt]
    for split in loaded.values():
        assert set(split.column_names) == expected_columns
        row = split[0]
        if fmt == "kto":
            assert isinstance(row["label"], bool)
        if fmt != "retrieval":
            messages = row["messages"] if fmt == "sft" else row["prompt"]
            assert {"role", "content"} <= set(messages[0])
        else:
            assert all(isinstance(row[c], str) and row[c] for c in expected_columns)


def test_export_redacts_but_keeps_the_banks_published_numbers(
    records: list[FeedbackRecord], tmp_path: Path
) -> None:
    result = write_export(records, "sft", tmp_path / "sft.jsonl", ExportFilters())
    text = "".join(Path(p).read_text() for p in result.files.values())
    for secret in ("4111", "JOHN.DOE", "415-555-2671"):
        assert secret not in text
    assert "[CARD]" in text and "[EMAIL]" in text and "[PHONE]" in text
    assert "1-800-555-0142" in text  # published in the disputes passage
    manifest = json.loads(Path(result.manifest_path).read_text())
    assert manifest["redactions"] == {"CARD": 2, "EMAIL": 1, "PHONE": 1}


def test_manifest_describes_the_files(records: list[FeedbackRecord], tmp_path: Path) -> None:
    filters = ExportFilters(until=T0 + dt.timedelta(days=1), min_agreement=0.6)
    result = write_export(records, "kto", tmp_path / "out" / "kto.jsonl", filters, seed=7)
    manifest_path = Path(result.manifest_path)
    assert manifest_path.name == "kto.manifest.json"
    assert {Path(p).name for p in result.files.values()} == {
        "kto.train.jsonl",
        "kto.validation.jsonl",
    }
    manifest = json.loads(manifest_path.read_text())
    assert manifest["format"] == "kto"
    assert manifest["schema_version"] == 1
    assert dt.datetime.fromisoformat(manifest["generated_at"]).tzinfo is not None
    assert manifest["counts"]["total"] == 5 == sum(result.counts.values())
    assert manifest["filters"]["min_agreement"] == 0.6
    assert manifest["time_window"]["until"] == "2026-10-02T09:00:00+00:00"
    assert manifest["time_window"]["first_vote"] == T0.isoformat()
    assert manifest["split"] == {"validation_fraction": 0.1, "seed": 7, "unit": "conversation"}
    for split, path in result.files.items():
        data = Path(path).read_bytes()
        assert manifest["files"][split]["sha256"] == hashlib.sha256(data).hexdigest()
        assert manifest["files"][split]["rows"] == result.counts[split] == data.count(b"\n")
    assert not [p for p in manifest_path.parent.iterdir() if p.name.endswith(".tmp")]


def test_split_is_deterministic_and_keeps_conversations_together(tmp_path: Path) -> None:
    records = [
        vote(
            f"a{c}-{turn}",
            conversation=f"conv-{c}",
            question=f"Question {c} {turn}?",
            answer=f"Answer {c} {turn}.",
        )
        for c in range(60)
        for turn in range(2)
    ]
    first = write_export(
        records, "sft", tmp_path / "one.jsonl", ExportFilters(), validation_fraction=0.3
    )
    second = write_export(
        records, "sft", tmp_path / "two.jsonl", ExportFilters(), validation_fraction=0.3
    )
    for split in ("train", "validation"):
        assert Path(first.files[split]).read_bytes() == Path(second.files[split]).read_bytes()
    conversations: dict[str, set[str]] = {}
    for split, path in first.files.items():
        for line in Path(path).read_text().splitlines():
            question = json.loads(line)["messages"][0]["content"]
            conversations.setdefault(question.split()[1], set()).add(split)
    assert all(len(splits) == 1 for splits in conversations.values())
    assert 20 <= first.counts["validation"] <= 56  # about 30% of 60 conversations x 2 rows
    assert split_of("conversation:x", validation_fraction=0.0, seed=13) == "train"


def test_empty_selection_still_writes_a_valid_manifest(tmp_path: Path) -> None:
    result = write_export([], "preference", tmp_path / "empty.jsonl", ExportFilters())
    assert dict(result.counts) == {"train": 0, "validation": 0}
    assert all(Path(p).read_bytes() == b"" for p in result.files.values())
    manifest = json.loads(Path(result.manifest_path).read_text())
    assert manifest["counts"] == {"train": 0, "validation": 0, "total": 0}
    assert manifest["time_window"]["first_vote"] is None
    assert manifest["files"]["train"]["sha256"] == hashlib.sha256(b"").hexdigest()


def test_a_failed_write_leaves_no_partial_files(
    records: list[FeedbackRecord], tmp_path: Path
) -> None:
    (tmp_path / "sft.validation.jsonl").mkdir()  # renaming onto a directory fails
    with pytest.raises(ExportError, match="could not write"):
        write_export(records, "sft", tmp_path / "sft.jsonl", ExportFilters())
    assert not (tmp_path / "sft.manifest.json").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_unwritable_destination_and_bad_arguments(
    records: list[FeedbackRecord], tmp_path: Path
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(ExportError):
        write_export(records, "sft", blocker / "sft.jsonl", ExportFilters())
    with pytest.raises(ExportError, match="format"):
        write_export(records, "dpo", tmp_path / "x.jsonl", ExportFilters())  # type: ignore[arg-type]
    with pytest.raises(ExportError, match="validation_fraction"):
        write_export(records, "sft", tmp_path / "x.jsonl", ExportFilters(), validation_fraction=1.0)
