"""`teller bench phrasing`: customers' own words against the demo bank.

BankFAQs questions are written in the words of the answers they belong to; customers
are not ("My card has gone missing", "I could not get my card to work at a shop"). This
benchmark asks BANKING77 utterances of the intents the demo knowledge base answers
through the answer pipeline on the demo bank and counts how many are answered, and how
many with the document that covers the intent cited first. It also asks utterances of
intents the demo bank does not cover and counts how many get an answer anyway (any
knowledge or rate answer to them is wrong: the right reply is "I can't answer that",
with a person offered). Run it with the settings to compare (for example
`TELLER_COVERAGE_BELOW=1`): the pipeline is built from them.

Two disjoint seeded samples of `per_intent` utterances per intent: `tuning` (seed 13)
to choose a setting on, `validation` (seed 14, from the utterances `tuning` left) to
check it on.
"""

from __future__ import annotations

import random
import tempfile
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any, Final, Literal

from bot.bench_intents import read_examples
from bot.settings import Settings

Sample = Literal["tuning", "validation"]

DEMO_INTENT_DOCUMENTS: Final = {
    "card_arrival": "card-services",
    "card_delivery_estimate": "card-services",
    "lost_or_stolen_card": "card-services",
    "declined_card_payment": "card-services",
    "pending_transfer": "transfers",
    "transfer_timing": "transfers",
    "top_up_by_cash_or_cheque": "transfers",
    "verify_my_identity": "identity-verification",
    "why_verify_identity": "identity-verification",
}
"""BANKING77 intents the demo knowledge base answers, and the document that does."""

DEMO_UNCOVERED_INTENTS: Final = (
    "age_limit",
    "apple_pay_or_google_pay",
    "beneficiary_not_allowed",
    "change_pin",
    "country_support",
    "edit_personal_details",
    "exchange_rate",
    "fiat_currency_support",
    "getting_virtual_card",
    "lost_or_stolen_phone",
    "passcode_forgotten",
    "visa_or_mastercard",
)
"""BANKING77 intents about things no demo document mentions (chosen from the intents'
names and the demo documents before measuring). Intents a demo section partly answers
(cash withdrawal charges: the fee table; closing an account: the savings page; a card
swallowed by an ATM, contactless not working: the lost-card and declined-payment
sections) are in neither list."""


def phrasing_sample(
    examples: Sequence[tuple[str, str]],
    sample: Sample,
    per_intent: int,
    intents: Collection[str] = DEMO_INTENT_DOCUMENTS.keys(),
) -> list[tuple[str, str]]:
    """(text, intent) pairs: `per_intent` of each of `intents` (by default the covered
    ones, `DEMO_INTENT_DOCUMENTS`)."""
    by_intent: dict[str, list[str]] = {}
    for text, intent in examples:
        if intent in intents:
            by_intent.setdefault(intent, []).append(text)
    chosen: list[tuple[str, str]] = []
    for intent in sorted(intents):
        texts = by_intent.get(intent, [])
        if len(texts) < 2 * per_intent:
            raise ValueError(
                f"{intent} has {len(texts)} utterances; two samples of {per_intent} need "
                f"{2 * per_intent}"
            )
        tuning = random.Random(13).sample(texts, per_intent)
        if sample == "tuning":
            picked = tuning
        else:
            taken = set(tuning)
            picked = random.Random(14).sample([t for t in texts if t not in taken], per_intent)
        chosen += [(text, intent) for text in picked]
    return chosen


def bench_phrasing(
    settings: Settings, train_csv: Path, *, sample: Sample = "validation", per_intent: int = 25
) -> dict[str, Any]:
    """Answer both samples on the demo bank. Covered intents: counts of answered and
    right-document-first; uncovered intents: how many were answered all the same."""
    from bot.demo_bank import load_demo_bank
    from bot.runtime import build_runtime
    from db.audit import Actor

    examples = read_examples(train_csv)
    covered = phrasing_sample(examples, sample, per_intent)
    uncovered = phrasing_sample(examples, sample, per_intent, DEMO_UNCOVERED_INTENTS)
    with tempfile.TemporaryDirectory(prefix="teller-bench-phrasing-") as tmp:
        local = settings.model_copy(update={"data_dir": Path(tmp), "database_url": None})
        runtime = build_runtime(local, migrate=True)
        try:
            load_demo_bank(runtime.knowledge, runtime.sessions, Actor.cli())
            answered = right = 0
            per_intent_counts: dict[str, dict[str, int]] = {}
            for text, intent in covered:
                result = runtime.answers.answer(text, channel="api")
                counts = per_intent_counts.setdefault(intent, {"answered": 0, "right_first": 0})
                if result.kind != "knowledge":
                    continue
                answered += 1
                counts["answered"] += 1
                first = result.citations[0].doc_id if result.citations else None
                if first == DEMO_INTENT_DOCUMENTS[intent]:
                    right += 1
                    counts["right_first"] += 1
            wrongly: dict[str, int] = dict.fromkeys(DEMO_UNCOVERED_INTENTS, 0)
            for text, intent in uncovered:
                result = runtime.answers.answer(text, channel="api")
                if result.kind in ("knowledge", "rate"):
                    wrongly[intent] += 1
            return {
                "dataset": train_csv.parent.name,
                "sample": sample,
                "questions": len(covered),
                "answered": answered,
                "right_first": right,
                "other_first": answered - right,
                "per_intent": per_intent_counts,
                "uncovered": {
                    "questions": len(uncovered),
                    "answered": sum(wrongly.values()),
                    "per_intent": wrongly,
                },
                **runtime.answers.thresholds(),
            }
        finally:
            runtime.close()
