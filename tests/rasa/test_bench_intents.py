"""The intent benchmark's pure parts: reading CSVs, splitting, writing NLU data,
scoring, and its command line's checks."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.bench_intents import (
    classification_scores,
    nlu_yaml,
    read_examples,
    stratified_split,
    top_intent,
)
from bot.cli import app


def test_accuracy_and_macro_f1_by_hand() -> None:
    gold = ["a", "a", "a", "b", "b", "c"]
    predicted = ["a", "a", "b", "b", "c", "c"]
    accuracy, macro_f1 = classification_scores(gold, predicted)
    # a: tp 2, fp 0, fn 1 -> 4/5; b: tp 1, fp 1, fn 1 -> 2/4; c: tp 1, fp 1, fn 0 -> 2/3
    assert accuracy == pytest.approx(4 / 6)
    assert macro_f1 == pytest.approx((4 / 5 + 2 / 4 + 2 / 3) / 3)


def test_a_label_only_predicted_counts_as_zero_in_macro_f1() -> None:
    accuracy, macro_f1 = classification_scores(["a", "a"], ["a", "z"])
    # a: tp 1, fn 1 -> 2/3; z: fp 1 -> 0
    assert accuracy == 0.5
    assert macro_f1 == pytest.approx((2 / 3 + 0) / 2)


def test_perfect_predictions_score_one() -> None:
    assert classification_scores(["x", "y"], ["x", "y"]) == (1.0, 1.0)


def test_scores_need_aligned_non_empty_inputs() -> None:
    with pytest.raises(ValueError, match="length"):
        classification_scores(["a"], [])
    with pytest.raises(ValueError, match="no examples"):
        classification_scores([], [])


def test_read_examples_normalises_text_and_intent_names(tmp_path: Path) -> None:
    path = tmp_path / "train.csv"
    path.write_text(
        'text,category\n"  where is   my card? ",card arrival\n,empty\nhello,greet\n',
        encoding="utf-8",
    )
    assert read_examples(path) == [("where is my card?", "card_arrival"), ("hello", "greet")]


def test_read_examples_needs_text_and_category(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("sentence,label\nhi,greet\n", encoding="utf-8")
    with pytest.raises(ValueError, match="text,category"):
        read_examples(path)


def test_nlu_yaml_groups_by_intent_and_neutralises_entity_markup() -> None:
    text = nlu_yaml([("top up [now](x)", "top_up"), ("hi", "greet"), ("add money", "top_up")])
    assert text.splitlines() == [
        'version: "3.1"',
        "nlu:",
        "  - intent: greet",
        "    examples: |",
        "      - hi",
        "  - intent: top_up",
        "    examples: |",
        "      - top up (now)(x)",
        "      - add money",
    ]


def test_top_intent_skips_the_fallback_intent() -> None:
    parse = {
        "intent": {"name": "nlu_fallback", "confidence": 0.4},
        "intent_ranking": [
            {"name": "nlu_fallback", "confidence": 0.4},
            {"name": "card_arrival", "confidence": 0.35},
        ],
    }
    assert top_intent(parse) == "card_arrival"
    assert top_intent({"intent": {"name": "greet"}}) == "greet"


def test_stratified_split_holds_out_each_intents_share_reproducibly() -> None:
    examples = [(f"{intent} example {i}", intent) for intent in "abc" for i in range(10)]
    train, test = stratified_split(examples, test_share=0.2, seed=13)
    assert sorted(train + test) == sorted(examples)
    assert Counter(intent for _, intent in test) == {"a": 2, "b": 2, "c": 2}
    assert stratified_split(examples, test_share=0.2, seed=13) == (train, test)
    assert stratified_split(examples, test_share=0.2, seed=14)[1] != test
    with pytest.raises(ValueError, match="between 0 and 1"):
        stratified_split(examples, test_share=1.0, seed=13)


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["--train", "a.csv"],
        ["--dataset", "d.csv", "--train", "a.csv", "--test", "b.csv"],
        ["--dataset", "d.csv", "--test", "b.csv"],
    ],
)
def test_bench_intents_takes_two_csvs_or_one_to_split(args: list[str]) -> None:
    result = CliRunner().invoke(app, ["bench", "intents", *args])
    assert result.exit_code != 0
    assert "give --train and --test, or --dataset alone" in result.output


def test_bench_intents_names_a_missing_dataset(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["bench", "intents", "--dataset", str(tmp_path / "no.csv")])
    assert result.exit_code != 0
    assert "no.csv" in result.output
