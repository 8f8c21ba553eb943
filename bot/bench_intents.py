"""`teller bench intents`: how well Teller's production NLU pipeline classifies intents.

Trains the pipeline of `bot/rasa/config.yml` (NLU only) on a `text,category` CSV (or
on a seeded, stratified share of one, `stratified_split`, the rest being the test),
serves the model with `rasa run --enable-api`, sends every example of the test CSV to
`/model/parse` one at a time after a warm-up, and reports::

    {"train_examples", "test_examples", "accuracy", "macro_f1", "train_seconds",
     "parse_ms": {"p50", "p99"}}

The predicted intent is the top of Rasa's intent ranking other than `nlu_fallback`:
the classifier's answer, even where the product would treat it as low confidence.
`train_seconds` is the wall-clock time of `rasa train nlu`, start-up included.
"""

from __future__ import annotations

import csv
import os
import re
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from bot.nlu_encoder import ensure_encoder
from bot.rasa_process import free_port, rasa_server, wait_until_ready
from bot.rasa_setup import (
    PROJECT_DIR,
    QUIET_ENV,
    RasaTrainingError,
    default_encoder_dir,
    nlu_env,
    rasa_venv,
)

WARMUP_PARSES = 20


def read_examples(path: Path) -> list[tuple[str, str]]:
    """(text, intent) pairs of a CSV with `text` and `category` columns; blanks skipped."""
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or not {"text", "category"} <= set(reader.fieldnames):
            raise ValueError(f"{path} needs the columns text,category; has {reader.fieldnames}")
        rows = []
        for row in reader:
            text = " ".join((row["text"] or "").split())
            intent = re.sub(r"\s+", "_", (row["category"] or "").strip())
            if text and intent:
                rows.append((text, intent))
    if not rows:
        raise ValueError(f"{path} has no examples")
    return rows


def nlu_yaml(examples: Sequence[tuple[str, str]]) -> str:
    """Rasa NLU training data for `examples`; brackets are neutralised so no text reads
    as an entity annotation."""
    by_intent: dict[str, list[str]] = {}
    for text, intent in examples:
        by_intent.setdefault(intent, []).append(text.replace("[", "(").replace("]", ")"))
    lines = ['version: "3.1"', "nlu:"]
    for intent in sorted(by_intent):
        lines += [f"  - intent: {intent}", "    examples: |"]
        lines += [f"      - {text}" for text in by_intent[intent]]
    return "\n".join(lines) + "\n"


def classification_scores(gold: Sequence[str], predicted: Sequence[str]) -> tuple[float, float]:
    """(accuracy, macro F1) of `predicted` against `gold`.

    accuracy = correct / n. Macro F1 is the unweighted mean over every label seen in
    `gold` or `predicted` of F1 = 2·TP / (2·TP + FP + FN), 0 for a label never predicted
    correctly (the definition of scikit-learn's `f1_score(average="macro")`).
    """
    if len(gold) != len(predicted):
        raise ValueError("gold and predicted differ in length")
    if not gold:
        raise ValueError("no examples to score")
    true_positive: Counter[str] = Counter()
    false_positive: Counter[str] = Counter()
    false_negative: Counter[str] = Counter()
    for truth, guess in zip(gold, predicted, strict=True):
        if truth == guess:
            true_positive[truth] += 1
        else:
            false_positive[guess] += 1
            false_negative[truth] += 1
    labels = set(gold) | set(predicted)
    f1 = []
    for label in labels:
        tp = true_positive[label]
        f1.append(2 * tp / (2 * tp + false_positive[label] + false_negative[label]))
    return sum(true_positive.values()) / len(gold), sum(f1) / len(labels)


def stratified_split(
    examples: Sequence[tuple[str, str]], *, test_share: float, seed: int
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(train, test): `test_share` of each intent's examples held out, seeded
    (scikit-learn's `train_test_split` with `stratify`)."""
    from sklearn.model_selection import train_test_split

    if not 0 < test_share < 1:
        raise ValueError(f"the test share must be between 0 and 1, not {test_share}")
    labels = [intent for _, intent in examples]
    train, test = train_test_split(
        list(examples), test_size=test_share, stratify=labels, random_state=seed
    )
    return list(train), list(test)


def top_intent(parse: dict[str, Any]) -> str:
    """The best intent of a `/model/parse` response other than `nlu_fallback`."""
    for candidate in parse.get("intent_ranking") or []:
        if candidate.get("name") != "nlu_fallback":
            return str(candidate["name"])
    return str((parse.get("intent") or {}).get("name") or "")


def bench_intents(
    train: Sequence[tuple[str, str]],
    test: Sequence[tuple[str, str]],
    *,
    project_dir: Path = PROJECT_DIR,
    venv: Path | None = None,
    startup_timeout_s: float = 300.0,
) -> dict[str, Any]:
    """Train the production NLU pipeline on the `train` examples, evaluate on `test`
    through Rasa's HTTP API; returns the benchmark's JSON object (see the module
    docstring)."""
    if not train or not test:
        raise ValueError("both the train and the test examples must be non-empty")
    rasa_env = rasa_venv(venv)
    with tempfile.TemporaryDirectory(prefix="teller-bench-intents-") as tmp:
        work = Path(tmp)
        (work / "nlu.yml").write_text(nlu_yaml(train), encoding="utf-8")
        encoder = ensure_encoder(default_encoder_dir())
        env = {
            **os.environ,
            **QUIET_ENV,
            **nlu_env(project_dir, encoder),
            "RASA_CACHE_DIRECTORY": str(work / "cache"),
        }
        argv = [
            str(rasa_env / "bin" / "rasa"), "train", "nlu",
            "--config", str(project_dir / "config.yml"), "--nlu", str(work / "nlu.yml"),
            "--out", str(work / "models"), "--fixed-model-name", "bench",
        ]  # fmt: skip
        log_path = work / "train.log"
        started = time.perf_counter()
        with log_path.open("w") as out:
            code = subprocess.run(
                argv, cwd=work, env=env, stdout=out, stderr=subprocess.STDOUT, check=False
            ).returncode
        train_seconds = time.perf_counter() - started
        model = work / "models" / "bench.tar.gz"
        if code != 0 or not model.is_file():
            tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-30:])
            raise RasaTrainingError(f"`rasa train nlu` failed (exit {code}):\n{tail}")

        port = free_port()
        server = rasa_server(
            rasa_env, model, port=port, cwd=work, env=env, log_path=work / "rasa.log"
        )
        server.start()
        try:
            wait_until_ready([server], startup_timeout_s)
            predicted, latencies = _parse_all(f"http://127.0.0.1:{port}", train, test)
        finally:
            server.stop()
    accuracy, macro_f1 = classification_scores([intent for _, intent in test], predicted)
    return {
        "train_examples": len(train),
        "test_examples": len(test),
        "accuracy": round(accuracy, 4),
        "macro_f1": round(macro_f1, 4),
        "train_seconds": round(train_seconds, 1),
        "parse_ms": {
            "p50": round(float(np.percentile(latencies, 50)), 2),
            "p99": round(float(np.percentile(latencies, 99)), 2),
        },
    }


def _parse_all(
    url: str, train: Sequence[tuple[str, str]], test: Sequence[tuple[str, str]]
) -> tuple[list[str], list[float]]:
    """Warm up with training examples, then parse each test example once, timing each."""
    predicted: list[str] = []
    latencies: list[float] = []
    with httpx.Client(base_url=url, timeout=30.0) as client:
        for text, _ in train[:WARMUP_PARSES]:
            client.post("/model/parse", json={"text": text}).raise_for_status()
        for text, _ in test:
            started = time.perf_counter()
            response = client.post("/model/parse", json={"text": text})
            latencies.append((time.perf_counter() - started) * 1e3)
            response.raise_for_status()
            predicted.append(top_intent(response.json()))
    return predicted, latencies
