"""The customer-phrasing benchmark's samples: seeded, per intent, disjoint."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.bench_phrasing import DEMO_INTENT_DOCUMENTS, DEMO_UNCOVERED_INTENTS, phrasing_sample

EXAMPLES = [
    (f"{intent} utterance {i}", intent) for intent in DEMO_INTENT_DOCUMENTS for i in range(12)
] + [(f"other {i}", "exchange_rate") for i in range(30)]


def test_samples_take_each_covered_intent_and_nothing_else() -> None:
    tuning = phrasing_sample(EXAMPLES, "tuning", 5)
    assert len(tuning) == 5 * len(DEMO_INTENT_DOCUMENTS)
    assert {intent for _, intent in tuning} == set(DEMO_INTENT_DOCUMENTS)
    assert tuning == phrasing_sample(EXAMPLES, "tuning", 5)  # seeded


def test_the_validation_sample_shares_nothing_with_the_tuning_one() -> None:
    tuning = {text for text, _ in phrasing_sample(EXAMPLES, "tuning", 6)}
    validation = {text for text, _ in phrasing_sample(EXAMPLES, "validation", 6)}
    assert len(validation) == 6 * len(DEMO_INTENT_DOCUMENTS)
    assert not tuning & validation


def test_the_uncovered_sample_takes_the_uncovered_intents_only() -> None:
    examples = EXAMPLES + [
        (f"{intent} utterance {i}", intent) for intent in DEMO_UNCOVERED_INTENTS for i in range(10)
    ]
    uncovered = phrasing_sample(examples, "validation", 5, DEMO_UNCOVERED_INTENTS)
    assert len(uncovered) == 5 * len(DEMO_UNCOVERED_INTENTS)
    assert {intent for _, intent in uncovered} == set(DEMO_UNCOVERED_INTENTS)
    assert not set(DEMO_UNCOVERED_INTENTS) & set(DEMO_INTENT_DOCUMENTS)


def test_too_few_utterances_for_two_samples_is_an_error() -> None:
    with pytest.raises(ValueError, match="two samples of 7 need 14"):
        phrasing_sample(EXAMPLES, "tuning", 7)


def test_the_command_checks_its_arguments(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from bot.cli import app

    runner = CliRunner()
    missing = runner.invoke(app, ["bench", "phrasing", "--dataset", str(tmp_path)])
    assert missing.exit_code == 2 and "has no train.csv" in missing.output
    (tmp_path / "train.csv").write_text("text,category\nwhere is my card,card_arrival\n")
    bad = runner.invoke(app, ["bench", "phrasing", "--dataset", str(tmp_path), "--sample", "x"])
    assert bad.exit_code == 2 and "--sample must be tuning or validation" in bad.output
    few = runner.invoke(app, ["bench", "phrasing", "--dataset", str(tmp_path)])
    assert few.exit_code == 2 and "card_arrival has 1 utterances" in few.output
    assert "Traceback" not in few.output
